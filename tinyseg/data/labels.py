"""Class sets, and how the pixel values of a mask become class labels.

**Labels** are the training/evaluation targets derived from an annotation (mask): ``int32``
``(H, W)`` with values in ``0 .. C-1`` and ``255`` = ignore (PASCAL VOC's "void" border band);
pixels labelled 255 count neither in the loss nor in the metrics.

A :class:`LabelMap` names the classes (class ``k`` is ``names[k]``) and says which mask value
stands for each class: by default value ``k`` is class ``k``; with ``values`` (the command
line's ``--mask-values``) value ``values[k]`` is class ``k``, so a 0/255 mask becomes
background/object with ``values=(0, 255)``. Every mask is checked: a value that is no class
(and not the ignore value 255) is an error naming the file and the values, never silently
remapped, and so is a mask with no labelled pixel at all.

Label sets provided:

* the post's **binary** mapping (:func:`binary_labels`, :data:`BINARY_CLASSES`): annotation value
  1 is the object, class index **1**; every other value is background, class index **0**. (The
  post's one-hot put the object in *column 0*; tinyseg uses index 1 = object so that a label map
  *is* the object mask.) :meth:`LabelMap.binary` is its checked form: only 0, 1 and 255 allowed.
* PASCAL VOC's 21 classes (:func:`voc_labels`, :data:`VOC_CLASSES`, :meth:`LabelMap.voc`).
* any ``N`` classes, named by a ``classes.txt`` (line ``k`` names class ``k``) or numbered.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .io import IGNORE_LABEL, check_annotation

__all__ = ["VOC_CLASSES", "BINARY_CLASSES", "MASK_HINT", "LabelError", "LabelMap", "binary_labels",
           "voc_labels", "read_class_names"]

#: PASCAL VOC 2012 class names; the position is the class index (0 = background).
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

#: Class names of the post's binary task: index 0 = background, index 1 = object.
BINARY_CLASSES = ("background", "object")

#: What to do about a mask that does not fit the classes (appended to the errors).
MASK_HINT = ("choose the classes with --classes N or --classes classes.txt, or map mask values to "
             "classes with --mask-values (e.g. --mask-values 0,255 for 0/255 masks)")


class LabelError(ValueError):
    """A mask whose values do not fit the chosen classes (the message names the file)."""


def _where(path):
    return f"mask {os.fspath(path)!r}" if path is not None else "the mask"


@dataclass(frozen=True)
class LabelMap:
    """Class names and the mask value of each class.

    Parameters
    ----------
    names : tuple of str
        ``names[k]`` is the name of class ``k``; ``1 <= len(names) <= 255``.
    values : tuple of int, optional
        ``values[k]`` is the mask pixel value of class ``k`` (distinct, 0..65535). ``None``:
        value ``k`` is class ``k``. Mask value 255 is the ignore label unless ``values`` lists it.

    Examples
    --------
    >>> LabelMap(("background", "object"), values=(0, 255)).to_labels(np.array([[0, 255]], np.uint8))
    array([[0, 1]], dtype=int32)
    """

    names: tuple
    values: tuple | None = None

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        object.__setattr__(self, "names", names)
        if not 1 <= len(names) <= 255:
            raise ValueError(f"The parameter `names` must name 1..255 classes; got {len(names)}")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup or any(not n.strip() for n in names):
            raise ValueError(f"The parameter `names` must hold distinct, non-empty names; got {list(names)}")
        if self.values is not None:
            values = tuple(int(v) for v in self.values)
            object.__setattr__(self, "values", values)
            if len(values) != len(names):
                raise ValueError(f"The parameter `values` must give one mask value per class "
                                 f"({len(names)}); got {len(values)}")
            if len(set(values)) != len(values) or min(values) < 0 or max(values) > 65535:
                raise ValueError(f"The parameter `values` must hold distinct values in 0..65535; "
                                 f"got {list(values)}")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def numbered(cls, n: int) -> "LabelMap":
        """``n`` classes named ``class0 .. class{n-1}``, mask value ``k`` = class ``k``."""
        return cls(tuple(f"class{k}" for k in range(int(n))))

    @classmethod
    def voc(cls) -> "LabelMap":
        """PASCAL VOC's 21 classes."""
        return cls(VOC_CLASSES)

    @classmethod
    def binary(cls) -> "LabelMap":
        """The post's task: mask value 0 = background, 1 = object, 255 ignored; others are errors."""
        return cls(BINARY_CLASSES, values=(0, 1))

    @classmethod
    def from_options(cls, classes=None, mask_values=None, default: "LabelMap | None" = None):
        """The map given by the command line's ``--classes N|FILE`` and ``--mask-values v0,v1,..``.

        ``classes`` is a class count (int or digit string) or a ``classes.txt`` path; ``mask_values``
        a comma-separated string or a sequence of ints; ``default`` is used when neither is given
        (and keeps its names when the count agrees). The rule is
        :func:`tinyseg.data.classes.resolve_classes`'s.
        """
        from .classes import resolve_classes

        return resolve_classes(classes=classes, mask_values=mask_values, fallback=default)

    # ------------------------------------------------------------------ use
    @property
    def n_classes(self) -> int:
        return len(self.names)

    def to_labels(self, annotation, path=None) -> np.ndarray:
        """Labels ``int32 (H, W)`` (0..C-1, 255 = ignore) of a mask, checked.

        Raises
        ------
        LabelError
            If a mask value is neither a class's value nor 255 (the message names the file,
            the values, and what to do), or if every pixel is 255 (nothing labelled).
        """
        annotation = check_annotation(annotation)
        counts = np.bincount(annotation.ravel().astype(np.int64)) if annotation.size and \
            annotation.min() >= 0 else None
        present = np.flatnonzero(counts) if counts is not None else np.unique(annotation)
        if self.values is None:
            known = set(range(self.n_classes))
        else:
            known = set(self.values)
        bad = [int(v) for v in present if int(v) not in known and int(v) != IGNORE_LABEL]
        if bad:
            shown = bad[:8] + (["..."] if len(bad) > 8 else [])
            raise LabelError(f"{_where(path)} has value(s) {shown} that are no class: "
                             f"{self.describe_values()}; {MASK_HINT}")
        ignored = IGNORE_LABEL not in known
        if ignored and annotation.size and set(int(v) for v in present) <= {IGNORE_LABEL}:
            raise LabelError(f"{_where(path)} has no labelled pixel: every pixel is "
                             f"{IGNORE_LABEL} (ignore); {MASK_HINT}")
        if self.values is None:
            return annotation.astype(np.int32)
        lut = np.full(max(int(present.max()) + 1, 256), IGNORE_LABEL, np.int32)  # value -> class
        lut[list(self.values)] = np.arange(self.n_classes, dtype=np.int32)
        return lut[annotation]

    def describe_values(self, limit: int = 12) -> str:
        """Which mask value is which class, and whether 255 is ignored, in words:
        ``"the classes' mask values are 0 (background), 255 (coin); no value is ignored (255 is a
        class)"``."""
        values = self.values if self.values is not None else range(self.n_classes)
        pairs = [f"{v} ({n})" for v, n in zip(values, self.names)]
        if len(pairs) > limit:
            pairs = pairs[:limit - 1] + ["...", pairs[-1]]
        ignore = (f"no value is ignored ({IGNORE_LABEL} is a class)" if IGNORE_LABEL in values
                  else f"{IGNORE_LABEL} is ignored")
        return f"the classes' mask values are {', '.join(pairs)}; {ignore}"

    def to_dict(self) -> dict:
        """JSON form for checkpoints: ``{"names": [...], "values": [...] or None}``."""
        return {"names": list(self.names), "values": None if self.values is None else list(self.values)}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelMap":
        return cls(tuple(d["names"]), None if d.get("values") is None else tuple(d["values"]))


def _parse_values(mask_values) -> tuple:
    if isinstance(mask_values, str):
        parts = [p.strip() for p in mask_values.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"--mask-values must be comma-separated integers such as 0,255; "
                             f"got {mask_values!r}")
        values = tuple(int(p) for p in parts)
    else:
        values = tuple(int(v) for v in mask_values)
    if len(values) < 2 or len(set(values)) != len(values) or max(values) > 65535:
        raise ValueError(f"--mask-values must list at least 2 distinct values in 0..65535, one per "
                         f"class in class order; got {mask_values!r}")
    return values


def read_class_names(path) -> tuple:
    """Class names from a text file: line ``k`` names class ``k`` (blank lines at the end ignored)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--classes: no such file {path!r} (give a class count N or a "
                                "classes.txt whose line k names class k)")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f.read().rstrip().splitlines()]
    if not lines or not lines[0]:
        raise ValueError(f"classes file {path!r} is empty: line k must name class k")
    if any(not n for n in lines):
        raise ValueError(f"classes file {path!r} has an empty line {lines.index('') + 1}: line k "
                         "must name class k")
    dup = sorted({n for n in lines if lines.count(n) > 1})
    if dup:
        raise ValueError(f"classes file {path!r} names {dup} more than once")
    if len(lines) > 255:
        raise ValueError(f"classes file {path!r} names {len(lines)} classes; at most 255 (255 is "
                         "the ignore label)")
    return tuple(lines)


def binary_labels(annotation, *, keep_ignore=True):
    """Map an annotation to the post's binary labels: 1 = object, 0 = background.

    The post's mapping is ``object = (annotation == 1)``, ``background = (annotation != 1)``:
    **every** other value becomes background (use :meth:`LabelMap.binary` to reject values other
    than 0, 1 and 255 instead). tinyseg keeps the PASCAL VOC void value 255 as ``255`` = ignore by
    default, so the uncertain border band is left out of the loss and the metrics. Pass
    ``keep_ignore=False`` for the post's exact mapping (255 becomes background).

    Parameters
    ----------
    annotation : ndarray of int, shape (H, W)
        Class indices as returned by :func:`load_annotation`.
    keep_ignore : bool, optional
        Keep 255 as the ignore label (default) instead of mapping it to background.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        Values in {0, 1} (and 255 where ``annotation == 255`` if ``keep_ignore``).

    Examples
    --------
    >>> binary_labels(np.array([[0, 1, 2, 255]], dtype=np.uint8))
    array([[  0,   1,   0, 255]], dtype=int32)
    """
    annotation = check_annotation(annotation)
    labels = (annotation == 1).astype(np.int32)
    if keep_ignore:
        labels[annotation == IGNORE_LABEL] = IGNORE_LABEL
    return labels


def voc_labels(annotation, *, path=None):
    """Validate a PASCAL VOC annotation and return it as ``int32`` labels.

    Parameters
    ----------
    annotation : ndarray of int, shape (H, W)
        Class indices; valid values are 0..20 (:data:`VOC_CLASSES`) and 255 (ignore).
    path : str, optional
        The file the annotation came from, named in error messages.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        A copy of ``annotation``.

    Raises
    ------
    ValueError
        If a value is neither a VOC class index nor 255; the message names the values and the
        file.
    """
    annotation = check_annotation(annotation)
    values = np.unique(annotation)
    bad = values[(values != IGNORE_LABEL) & ((values < 0) | (values >= len(VOC_CLASSES)))]
    if bad.size:
        where = f" in annotation {os.fspath(path)!r}" if path is not None else ""
        raise ValueError(
            f"unknown label value(s) {bad.tolist()}{where}: PASCAL VOC labels are "
            f"0..{len(VOC_CLASSES) - 1} and {IGNORE_LABEL} (ignore)"
        )
    return annotation.astype(np.int32)
