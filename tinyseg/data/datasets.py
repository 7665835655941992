"""Segmentation datasets on disk: the PASCAL VOC layout and a plain pair of folders.

Both are a list of ``(id, image file, mask file)`` and a :class:`~tinyseg.data.labels.LabelMap`;
``dataset[i]`` reads, checks and returns ``(image uint8 (H, W, 3), labels int32 (H, W))``.
Construction checks that every file exists; :meth:`SegmentationDataset.check` reads every mask
and image header once, so that a bad file stops a run *before* work starts, with one message
naming the file.

Layouts::

    VOC                                          folders
    root/JPEGImages/<id>.jpg                     root/images/<stem>.jpg|.png|...
    root/SegmentationClass/<id>.png              root/masks/<stem>.png   (matched by file stem)
    root/ImageSets/Segmentation/<split>.txt      splits: root/<split>/images + masks, or a
                                                 list of stems root/<split>.txt
"""
from __future__ import annotations

import os
import warnings
from importlib import resources

import numpy as np

from .io import IGNORE_LABEL, image_size, load_annotation, load_image
from .labels import LabelMap

__all__ = ["SegmentationDataset", "VOCDataset", "FolderDataset", "open_dataset", "dataset_layout",
           "chelsea", "IMAGE_EXTENSIONS", "MASK_EXTENSIONS"]

#: File endings read as images in the folders layout (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
#: File endings read as masks: lossless formats only (JPEG would blur the class values).
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".pgm")


def _listing(paths, limit=3):
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(repr(p) for p in paths[:limit]) + more


class SegmentationDataset:
    """``(image, labels)`` pairs read from files: the common part of both layouts.

    Parameters
    ----------
    items : list of (str, str, str)
        ``(id, image path, mask path)`` per sample, in a fixed order.
    label_map : LabelMap
        Class names and mask values (checked on every read).
    name : str
        What to call the dataset in messages (root and split).
    """

    def __init__(self, items, label_map: LabelMap, name: str):
        self.items = list(items)
        self.label_map = label_map
        self.name = name
        if not self.items:
            raise ValueError(f"{name} has no images")
        missing = [p for _, img, msk in self.items for p in (img, msk) if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(f"{name} lists files that do not exist: {_listing(missing)}")

    @property
    def ids(self) -> list:
        return [i for i, _, _ in self.items]

    @property
    def class_names(self) -> tuple:
        return self.label_map.names

    @property
    def n_classes(self) -> int:
        return self.label_map.n_classes

    def image_path(self, index: int) -> str:
        return self.items[index][1]

    def mask_path(self, index: int) -> str:
        return self.items[index][2]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        """``(image, labels)``: uint8 (H, W, 3) RGB and int32 (H, W) with 255 = ignore, checked."""
        _, image_path, mask_path = self.items[index]
        image = load_image(image_path)
        annotation = load_annotation(mask_path)
        _check_sizes(mask_path, annotation.shape, image_path, image.shape[:2])
        return image, self.label_map.to_labels(annotation, path=mask_path)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def check(self, indices=None, progress: bool = False) -> np.ndarray:
        """Read every mask and image header once; return the pixel count of each class.

        Raises the error of the first bad file (missing, unreadable, size mismatch, a value that
        is no class, nothing labelled), naming it. Images are checked by their header (size and
        format); a file damaged past its header is reported when it is read.

        Returns
        -------
        counts : ndarray of int64, shape (C,)
            Labelled pixels of each class over the checked items.
        """
        indices = range(len(self)) if indices is None else indices
        if progress:
            from tqdm.auto import tqdm
            indices = tqdm(indices, desc="check data", unit="image", leave=False)
        counts = np.zeros(self.n_classes, np.int64)
        for i in indices:
            _, image_path, mask_path = self.items[i]
            annotation = load_annotation(mask_path)
            _check_sizes(mask_path, annotation.shape, image_path, image_size(image_path))
            labels = self.label_map.to_labels(annotation, path=mask_path)
            counts += np.bincount(labels[labels != IGNORE_LABEL].ravel(), minlength=self.n_classes)
        return counts

    def __repr__(self):
        return f"{type(self).__name__}({self.name}) [{len(self)} images, {self.n_classes} classes]"


def _check_sizes(mask_path, mask_hw, image_path, image_hw):
    if tuple(mask_hw) != tuple(image_hw):
        raise ValueError(f"annotation {mask_path!r} is {mask_hw[0]}x{mask_hw[1]} but image "
                         f"{image_path!r} is {image_hw[0]}x{image_hw[1]} (H x W)")


def _label_map(labels) -> LabelMap:
    if isinstance(labels, LabelMap):
        return labels
    if labels == "voc":
        return LabelMap.voc()
    if labels == "binary":
        return LabelMap.binary()
    raise ValueError(f"The parameter `labels` must be 'voc', 'binary' or a LabelMap; got {labels!r}")


class VOCDataset(SegmentationDataset):
    """A PASCAL VOC-layout segmentation dataset on disk.

    Layout (as in ``VOCdevkit/VOC2012``)::

        root/JPEGImages/<id>.jpg
        root/SegmentationClass/<id>.png            palette PNG of class indices, 255 = void
        root/ImageSets/Segmentation/<split>.txt    one <id> per line

    Parameters
    ----------
    root : str or os.PathLike
        Dataset folder (the one holding ``JPEGImages``).
    split : str, optional
        Name of the id list, e.g. ``"train"``, ``"val"`` or ``"trainval"``.
    labels : {"voc", "binary"} or LabelMap, optional
        ``"voc"``: the 21 VOC classes; ``"binary"``: the post's task (mask value 1 = object,
        0 = background, 255 ignored, any other value an error); or any :class:`LabelMap`.

    Examples
    --------
    >>> ds = VOCDataset("VOCdevkit/VOC2012", "val")  # doctest: +SKIP
    >>> image, labels = ds[0]  # uint8 (H, W, 3), int32 (H, W)  # doctest: +SKIP
    """

    def __init__(self, root, split="train", *, labels="voc"):
        self.root = os.fspath(root)
        self.split = str(split)
        label_map = _label_map(labels)
        self.labels = labels if isinstance(labels, str) else "custom"
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"dataset folder not found: {self.root!r}")
        self.image_dir = os.path.join(self.root, "JPEGImages")
        self.annotation_dir = os.path.join(self.root, "SegmentationClass")
        list_path = os.path.join(self.root, "ImageSets", "Segmentation", f"{self.split}.txt")
        for folder in (self.image_dir, self.annotation_dir):
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"folder {folder!r} not found: a PASCAL VOC dataset needs JPEGImages/, "
                    "SegmentationClass/ and ImageSets/Segmentation/"
                )
        if not os.path.isfile(list_path):
            raise FileNotFoundError(f"split list {list_path!r} not found (split={self.split!r})")
        with open(list_path, encoding="utf-8") as f:
            # A line may carry extra columns (as in the classification lists); the id is first.
            ids = [line.split()[0] for line in f if line.strip()]
        if not ids:
            raise ValueError(f"split list {list_path!r} is empty")
        items = [(i, os.path.join(self.image_dir, f"{i}.jpg"),
                  os.path.join(self.annotation_dir, f"{i}.png")) for i in ids]
        super().__init__(items, label_map, f"split {self.split!r} of {self.root!r}")

    def annotation_path(self, image_id):
        """Path of the annotation PNG of ``image_id``."""
        return os.path.join(self.annotation_dir, f"{image_id}.png")

    def image_path(self, index_or_id):
        """Path of the JPEG image of ``index_or_id`` (an index, or an id string)."""
        if isinstance(index_or_id, str):
            return os.path.join(self.image_dir, f"{index_or_id}.jpg")
        return super().image_path(index_or_id)

    def __repr__(self):
        return f"VOCDataset({self.root!r}, {self.split!r}, labels={self.labels!r}) [{len(self)} images]"


class FolderDataset(SegmentationDataset):
    """Images and masks in two folders, matched by file stem (``images/a.jpg`` ↔ ``masks/a.png``).

    Parameters
    ----------
    root : str or os.PathLike
        A folder holding ``images/`` and ``masks/``.
    split : str, optional
        ``None``: every image of ``root/images``. A name: ``root/<split>/images`` and
        ``root/<split>/masks`` if those exist, else the stems listed (one per line) in
        ``root/<split>.txt``.
    labels : LabelMap
        The classes and their mask values.
    """

    def __init__(self, root, split=None, *, labels: LabelMap):
        self.root = os.fspath(root)
        self.split = split
        base, listed = _folder_split(self.root, split)
        image_dir, mask_dir = os.path.join(base, "images"), os.path.join(base, "masks")
        images, masks = _by_stem(image_dir, IMAGE_EXTENSIONS), _by_stem(mask_dir, None)
        bad = [p for p in masks.values() if not p.lower().endswith(MASK_EXTENSIONS)]
        if bad:
            raise ValueError(f"mask {bad[0]!r} is not a lossless image (masks must be "
                             f"{'/'.join(MASK_EXTENSIONS)}: JPEG would change the class values)")
        stems = sorted(images) if listed is None else listed
        unknown = [s for s in stems if s not in images]
        if unknown:
            raise FileNotFoundError(f"{split}.txt lists image(s) not in {image_dir!r}: "
                                    f"{_listing(unknown)}")
        no_mask = [images[s] for s in stems if s not in masks]
        if no_mask:
            raise FileNotFoundError(f"image(s) without a mask in {mask_dir!r} (masks are matched by "
                                    f"file stem, e.g. images/a.jpg -> masks/a.png): {_listing(no_mask)}")
        orphans = sorted(masks[s] for s in masks if s not in images)
        if orphans:
            warnings.warn(f"mask(s) without an image in {image_dir!r} are not used: {_listing(orphans)}",
                          UserWarning, stacklevel=2)
        name = f"{'split ' + repr(split) + ' of ' if split else ''}{self.root!r}"
        super().__init__([(s, images[s], masks[s]) for s in stems], labels, name)

    def __repr__(self):
        return f"FolderDataset({self.root!r}, {self.split!r}) [{len(self)} images, {self.n_classes} classes]"


def _folder_split(root, split):
    """``(folder holding images/ and masks/, listed stems or None)`` of a split of the folders layout."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset folder not found: {root!r}")
    if split:
        sub = os.path.join(root, split)
        if os.path.isdir(os.path.join(sub, "images")):
            return sub, None
        list_path = os.path.join(root, f"{split}.txt")
        if os.path.isdir(os.path.join(root, "images")) and os.path.isfile(list_path):
            with open(list_path, encoding="utf-8") as f:
                stems = [os.path.splitext(line.split()[0])[0] for line in f if line.strip()]
            if not stems:
                raise ValueError(f"split list {list_path!r} is empty")
            return root, stems
        raise FileNotFoundError(f"no split {split!r} in {root!r}: expected {sub}/images/ and "
                                f"{sub}/masks/, or {list_path} listing image names")
    if not os.path.isdir(os.path.join(root, "images")):
        raise FileNotFoundError(f"{root!r} has no images/ folder: the folders layout is "
                                "images/ and masks/ matched by file stem (or VOC's JPEGImages/ ...)")
    return root, None


def _by_stem(folder, extensions):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder!r} not found: the folders layout needs images/ and "
                                "masks/ side by side")
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        stem, ext = os.path.splitext(name)
        if extensions is not None and ext.lower() not in extensions:
            continue
        if stem in found:
            raise ValueError(f"two files with the stem {stem!r} in {folder!r}: {found[stem]!r} and "
                             f"{path!r} (images and masks are matched by stem)")
        found[stem] = path
    return found


def dataset_layout(root) -> str:
    """``"voc"`` if ``root`` holds ``JPEGImages/``, else ``"folders"``."""
    return "voc" if os.path.isdir(os.path.join(os.fspath(root), "JPEGImages")) else "folders"


def open_dataset(root, split=None, labels: LabelMap | str = "voc") -> SegmentationDataset:
    """The dataset at ``root`` in whichever layout it has (VOC, or images/ + masks/ folders).

    ``split=None`` means ``"train"`` for VOC and the whole folder for the folders layout.
    """
    if dataset_layout(root) == "voc":
        return VOCDataset(root, split or "train", labels=labels)
    return FolderDataset(root, split, labels=_label_map(labels))


#: Where the bundled annotation lives inside the package.
CHELSEA_ANNOTATION = "assets/chelsea_annotation.png"


def chelsea():
    """The demo's image and ground truth: scikit-image's ``chelsea`` cat and its annotation.

    The image ships with scikit-image (``skimage.data.chelsea()``, 300x451). The annotation
    ships with tinyseg (``tinyseg/assets/chelsea_annotation.png``, a palette PNG; see
    ``tinyseg/assets/README.md`` for how it was made and checked): 1 = cat, 0 = background,
    255 = a thin uncertain band along the cat's outline (ignored by loss and metrics).

    Returns
    -------
    image : ndarray of uint8, shape (300, 451, 3)
        RGB image.
    annotation : ndarray of uint8, shape (300, 451)
        Values 0, 1 and 255; pass it to :func:`binary_labels` for training labels.
    """
    from skimage import data as skdata

    image = skdata.chelsea()
    ref = resources.files("tinyseg").joinpath(CHELSEA_ANNOTATION)
    with resources.as_file(ref) as path:
        annotation = load_annotation(path)
    if annotation.shape != image.shape[:2]:  # pragma: no cover - guards a bad asset
        raise ValueError(
            f"bundled annotation {CHELSEA_ANNOTATION!r} is {annotation.shape} but the chelsea "
            f"image is {image.shape[:2]}"
        )
    return np.ascontiguousarray(image, dtype=np.uint8), annotation
