"""Install detlab: ``pip install -e .`` (add ``[tests]`` for the test suite, ``[onnx]`` for ONNX export)."""
from setuptools import find_packages, setup

setup(
    name='detlab',
    version='0.1.0',
    description='Config-driven object detection in the MMDetection 3.x style, '
    'on current PyTorch, with no compiled extension.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['detlab', 'detlab.*']),
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'mmengine>=0.10.7,<0.11',
        'mmcv-lite>=2.1',
        'numpy',
        'opencv-python',
        # Image headers are read without decoding (the pixel limit) through Pillow's drivers.
        'Pillow',
        # linear_sum_assignment for the DETR family's Hungarian matching.
        'scipy',
        'pycocotools',
        'tensorboard',
        'matplotlib',
    ],
    extras_require={
        # ONNX export (tools/deployment/export_onnx.py) and checking it with onnxruntime.
        'onnx': ['onnx', 'onnxruntime'],
        'tests': ['pytest>=7', 'pytest-xdist', 'onnx', 'onnxruntime'],
    },
    license='Apache-2.0',
)
