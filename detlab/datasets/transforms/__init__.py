import mmcv.transforms  # noqa: F401  (registers mmcv's generic transforms in mmengine's root)
