"""The data room: CIFAR loading, download + verification, the pack, and augmentation.

==========================  ===============================================================
``cifar.py``                :func:`load_cifar`: where the data is looked for, in which order
``formats.py``              the spec table (URLs, MD5s, files, records) and :class:`CIFAR`
``download.py``             verified download, MD5 checks, safe extraction
``binary_format.py``        the binary version (records, structural checks; no pickle)
``python_format.py``        the python version (MD5 first, then a restricted unpickler)
``errors.py``               :class:`DataNotFoundError`, :class:`DataIntegrityError`
``synthetic.py``            :func:`synthetic_cifar`, a stand-in for quick runs
``pack.py``                 a compact subset in one ``.npz`` (``python -m minivit.data pack``)
``augment/``                augmentation on the device, one technique per file
==========================  ===============================================================

``from minivit.data import load_cifar, synthetic_cifar, DataNotFoundError, ...`` keeps working:
every public name of ``minivit.data.cifar`` (the module once named ``minivit.data``) is here too.
"""
from minivit.data.cifar import (  # noqa: F401
    CIFAR,
    DATASET_NAMES,
    PIXELS_PER_IMAGE,
    SPECS,
    BinaryFormat,
    DataIntegrityError,
    DataNotFoundError,
    DatasetSpec,
    PythonFormat,
    RestrictedUnpickler,
    default_data_dir,
    download_file,
    extract_archive,
    load_binary_folder,
    load_cifar,
    load_python_folder,
    md5_of_file,
    read_binary_file,
    read_class_names,
    read_pickle,
    read_python_batch,
    resolve_data_dir,
    synthetic_cifar,
    verify_md5,
    verify_python_folder,
)
