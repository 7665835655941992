"""The commands' memory check: refuse, in one line, a run whose model and step cannot fit.

:func:`check_training` (``train``) and :func:`check_forward` (``predict``, ``evaluate``) estimate
the bytes from the options with :func:`tinyseg.models.memory.estimate_memory` for the largest
image the run will see (a training step: the ``--crop`` window if given, else the largest
training image scaled by the top of ``--scale-range``) and compare them with the memory
available now. The message names the option that drives the figure: ``--width`` when the
parameters and optimizer state outweigh the feature maps, else ``--crop``, the image size or the
scale of ``--scale-range`` (the whole image is resized before it is cropped).
"""
from __future__ import annotations

__all__ = ["largest_image", "check_training", "check_forward"]

SCALED_BYTES_PER_PIXEL = 3 * 8 + 3 + 4 + 4     # resized float64 RGB, its uint8 copy, labels in and out


def largest_image(dataset_or_paths) -> tuple:
    """``(H, W)`` of the largest image (by pixels) of a dataset or a list of image paths, from headers."""
    from ..data.io import image_size

    if isinstance(dataset_or_paths, (list, tuple)):
        sizes = [image_size(p) for p in dataset_or_paths]
    elif hasattr(dataset_or_paths, "image_path"):
        sizes = [image_size(dataset_or_paths.image_path(i)) for i in range(len(dataset_or_paths))]
    else:
        sizes = [tuple(image.shape[:2]) for image, _ in dataset_or_paths]
    return max(sizes, key=lambda s: s[0] * s[1])


def _refuse_if_too_big(estimate, subject: str, what: str, hint: str) -> None:
    from ..models import memory

    free = memory.available_memory()
    if free is None or estimate.total <= free:
        return
    raise ValueError(f"{subject} needs about {memory.format_bytes(estimate.total)} for {what} "
                     f"({memory.format_bytes(free)} available); {hint}")


def _fmt(value) -> str:
    return f"{value:g}"


def check_training(args, model_name: str, n_classes: int, dataset, augment, optimizer: str,
                   batch: int, ranks: int, crf_rnn: bool) -> None:
    """Refuse a training step that cannot fit (``args``: the parsed ``train`` options)."""
    from ..models.memory import estimate_memory

    H, W = largest_image(dataset)
    s = max(augment.scale)
    scaled = (int(round(H * s)), int(round(W * s)))
    scaled_name = f"a training image of {scaled[0]}x{scaled[1]}" + (f" (scaled by {s:g})" if s != 1 else "")
    if augment.crop is not None:
        size, subject = augment.crop, f"--crop {augment.crop[0]},{augment.crop[1]}"
        hint = "lower --width or --crop"
    else:
        size, subject, hint = scaled, scaled_name, "lower --width or --scale-range, or add --crop"
    estimate = estimate_memory(model_name, n_classes, args.width, size, train=True, optimizer=optimizer,
                               batch=batch, ranks=ranks, crf_rnn=crf_rnn)
    if s != 1:
        # augmentation resizes the whole image before cropping: float64 RGB, uint8 and int32 labels
        resize = SCALED_BYTES_PER_PIXEL * scaled[0] * scaled[1]
        estimate.activations += resize
        if resize > estimate.activations - resize and augment.crop is not None:
            subject, hint = scaled_name, "lower --scale-range"
    if estimate.parameters + estimate.optimizer > estimate.activations:
        subject, hint = f"--width {_fmt(args.width)}", "lower --width"
    _refuse_if_too_big(estimate, subject, "a training step", hint)


def check_forward(model_config: dict, images, hint: str = "use a smaller image") -> None:
    """Refuse a forward (``predict``/``evaluate``) of a checkpoint's model that cannot fit.

    ``model_config``: the checkpoint's ``"model"`` config; ``images``: a dataset or image paths.
    """
    from ..models.memory import estimate_memory

    H, W = largest_image(images)
    estimate = estimate_memory(model_config.get("name", "fcn32s"), model_config.get("n_classes", 2),
                               model_config.get("width", 1.0), (H, W), train=False,
                               crf_rnn="crf_rnn" in model_config)
    _refuse_if_too_big(estimate, f"an image of {H}x{W}", "a forward", hint)
