"""Datasets: readers of the original ``.npy`` layout, Tiny-ImageNet split tasks, image folders, the
built-in glyph family, and the loaders that feed training.

``load_dataset(name, root, split, image_size=None) -> ImageArrays`` picks a reader by name (see
:mod:`dass.data.registry`); ``DeviceLoader`` serves augmented batches from a dataset held on the
device (:mod:`dass.data.loader`).
"""
from .arrays import ImageArrays, read_split, write_split
from .registry import dataset_info, dataset_key, list_datasets, load_dataset, register_dataset

__all__ = ["ImageArrays", "read_split", "write_split", "load_dataset", "list_datasets", "dataset_info", "dataset_key",
           "register_dataset"]
