"""`folder`: any folder of images (png/jpg/webp/bmp, nested, any size and mode) as one uint8 tensor."""

from __future__ import annotations

from ganforge.data.base import DATASETS, TensorData, image_size_of
from ganforge.data.folder import load_image_folder
from ganforge.errors import DataError


@DATASETS.register("folder")
def image_folder(cfg) -> TensorData:
    if not cfg.root:
        raise DataError("dataset 'folder' needs the folder: pass --data-root DIR")
    size = image_size_of(cfg, None) if cfg.image_size is not None else None
    loaded = load_image_folder(cfg.root, channels=cfg.channels, size=size, resize=cfg.resize)
    return TensorData(loaded.images, loaded.labels, len(loaded.class_names), "folder")
