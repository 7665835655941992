"""The one rule that turns the class options into a :class:`~tinyseg.data.labels.LabelMap`.

Every command that reads masks (``train``, ``evaluate``, ``crf-search``) resolves its classes with
:func:`resolve_classes`; :data:`RULE` is the same rule in words, printed by their ``--help``.
"""
from __future__ import annotations

from .labels import MASK_HINT, LabelMap, read_class_names

__all__ = ["RULE", "resolve_classes"]

#: The rule of :func:`resolve_classes`, as the command-line help states it.
RULE = (
    "How the classes are chosen. Names: from --classes FILE; else from --labels; else the "
    "checkpoint's (evaluate, crf-search, train --resume); else from ROOT/classes.txt; else VOC's "
    "21 classes for a VOC folder and background/object for --image; else generic (background, "
    "object for 2 classes; class0, class1, ... otherwise). A file's names are never replaced by "
    "generic ones. Mask values: --mask-values (its k-th value is class k's); else the --labels set's or "
    "the checkpoint's; else value k is class k. The class count of every source given must agree "
    "(--classes FILE or --labels replaces ROOT/classes.txt): a disagreement is an error naming "
    "both, e.g. '--mask-values has 3 values but ROOT/classes.txt names 2 classes'. 255 is the "
    "ignore value unless --mask-values lists it.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun == "class" else f"{n} {noun}s"


def _generic(n: int) -> tuple:
    return ("background", "object") if n == 2 else LabelMap.numbered(n).names


def _is_generic(names) -> bool:
    return tuple(names) in (_generic(len(names)), LabelMap.numbered(len(names)).names)


def resolve_classes(*, classes=None, mask_values=None, labels=None, found=None, saved=None,
                    saved_from: str = "the checkpoint", fallback: LabelMap | None = None) -> LabelMap:
    """Class names and mask values from every source a command has.

    Parameters
    ----------
    classes : str or int, optional
        ``--classes``: a class count ``N`` or a ``classes.txt`` path (line ``k`` names class ``k``).
    mask_values : str or sequence of int, optional
        ``--mask-values``: the mask value of each class, in class order (``"0,255"``).
    labels : {"binary", "voc"}, optional
        ``--labels``: a named class set (binary: values 0 and 1; voc: 21 classes, value k = class k).
    found : str, optional
        The dataset's own ``ROOT/classes.txt``, if it has one.
    saved : LabelMap or dict, optional
        A checkpoint's classes (its model has exactly that many outputs).
    saved_from : str
        How error messages name ``saved`` (e.g. ``"checkpoint run.h5"``).
    fallback : LabelMap, optional
        The data source's usual classes (VOC's for a VOC folder, the binary task for one image),
        used when nothing names the classes and the count agrees.

    Returns
    -------
    LabelMap

    Raises
    ------
    ValueError
        One line: two sources give different class counts (the message names both, e.g.
        ``--mask-values has 3 values but coins/classes.txt names 2 classes``), ``--labels`` and
        ``--classes FILE`` both name the classes, or nothing says what the classes are.

    Notes
    -----
    Names come from the first of: ``classes`` as a file, ``labels``, ``saved``, ``found``,
    ``fallback`` (only if every count given agrees with it), generic names; generic names of
    ``saved`` (a checkpoint that stored none) give way to a file's. Mask values come from
    ``mask_values``, else ``labels``' set, else ``saved``, else value ``k`` is class ``k``. Every
    count source must agree with the first one: the name source, ``--classes N``,
    ``--mask-values``, ``saved`` and ``found`` (``found`` is left out when ``--classes FILE`` or
    ``labels`` replace it). This is :data:`RULE`.
    """
    from .labels import _parse_values

    values = _parse_values(mask_values) if mask_values is not None else None
    if saved is not None and not isinstance(saved, LabelMap):
        saved = LabelMap.from_dict(saved)
    file_names = count = None
    if classes is not None:
        text = str(classes).strip()
        if text.isdigit():
            count = int(text)
            if not 1 <= count <= 255:
                raise ValueError(f"--classes must be 1..255 classes (255 is the ignore label); got {count}")
        else:
            file_names = read_class_names(text)
    if labels is not None and file_names is not None:
        raise ValueError("--labels and --classes FILE both name the classes: give one of them")
    named = None                         # (names, values, how an error names this source)
    if labels is not None:
        if labels not in ("binary", "voc"):
            raise ValueError(f"--labels must be 'binary' or 'voc', got {labels!r}")
        lm = LabelMap.binary() if labels == "binary" else LabelMap.voc()
        named = (lm.names, lm.values, f"--labels {labels} names {_count(lm.n_classes, 'class')}")
    elif file_names is not None:
        named = (file_names, None, f"--classes {classes} names {_count(len(file_names), 'class')}")
    # Every source that fixes the count, the name source first (its names win).
    sources = [named] if named else []
    if saved is not None:
        sources.append((saved.names, saved.values,
                        f"{saved_from} names {_count(saved.n_classes, 'class')}"))
    if found is not None and named is None:
        names = read_class_names(found)
        sources.append((names, None, f"{found} names {_count(len(names), 'class')}"))
    if count is not None:
        sources.append((None, None, f"--classes gives {_count(count, 'class')}", count))
    if values is not None:
        sources.append((None, None, f"--mask-values has {_count(len(values), 'value')}", len(values)))
    sized = [(s[3] if len(s) > 3 else len(s[0]), s[2]) for s in sources]
    for n, what in sized[1:]:
        if n != sized[0][0]:
            fix = ("give one mask value per class" if "--mask-values" in what
                   else "the class counts must agree")
            raise ValueError(f"{what} but {sized[0][1]}: {fix}")
    if not sized:
        if fallback is None:
            raise ValueError("the classes are not known: " + MASK_HINT)
        return fallback
    n = sized[0][0]
    with_names = [s for s in sources if s[0] is not None]
    if len(with_names) > 1 and _is_generic(with_names[0][0]):   # e.g. a checkpoint without names
        with_names = [s for s in with_names if not _is_generic(s[0])] or with_names
    if with_names:
        names = with_names[0][0]
    elif fallback is not None and fallback.n_classes == n:
        names = fallback.names
    else:
        names = _generic(n)
    if values is None:
        if labels is not None:
            values = named[1]
        elif saved is not None:
            values = saved.values
        elif not with_names and fallback is not None and fallback.n_classes == n:
            values = fallback.values
    return LabelMap(names, values)
