"""``channels_last=True`` and ``compile`` in a config, through a real Runner."""
import logging

import pytest
import torch
from mmengine.model import BaseModel

from detlab.engine.runner import DetRunner


class ConvToy(BaseModel):
    """A backbone conv and a neck conv; ``loss`` is the mean output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
        self.neck = torch.nn.Conv2d(8, 4, 1)

    def forward(self, inputs, mode='tensor'):
        outputs = self.neck(self.backbone(torch.stack(inputs)))
        return dict(loss=outputs.square().mean()) if mode == 'loss' else outputs


def train(tmp_path, name: str, **options) -> DetRunner:
    images = torch.rand(8, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    runner = DetRunner(
        model=ConvToy(), work_dir=str(tmp_path / name),
        train_dataloader=dict(dataset=[dict(inputs=image) for image in images], batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_scope='detlab', log_level=logging.WARNING, cfg=dict(**options),
        experiment_name=f'{name}-{tmp_path.name}')
    runner.train()
    return runner


def test_channels_last_moves_conv_weights_and_trains_the_same(tmp_path):
    plain = train(tmp_path, 'nchw', channels_last=False)
    nhwc = train(tmp_path, 'nhwc', channels_last=True)
    weight = nhwc.model.backbone[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    assert plain.model.backbone[0].weight.is_contiguous()
    # On the CPU the same arithmetic; on a GPU cuDNN picks other kernels for NHWC (and TF32).
    on_cuda = weight.is_cuda
    tolerance = dict(rtol=1e-3, atol=1e-4) if on_cuda else dict(rtol=1e-5, atol=1e-6)
    for (key, a), (_, b) in zip(plain.model.state_dict().items(),
                                nhwc.model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=key, **tolerance)


def test_channels_last_by_default_on_cuda_only(tmp_path):
    runner = train(tmp_path, 'default')
    weight = runner.model.backbone[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == weight.is_cuda
    assert weight.is_contiguous() != weight.is_cuda


def test_compile_compiles_backbone_and_neck_in_place(tmp_path):
    plain = train(tmp_path, 'eager')
    compiled = train(tmp_path, 'compiled', compile=dict(backend='eager'))
    model = compiled.model
    assert model.backbone._compiled_call_impl is not None
    assert model.neck._compiled_call_impl is not None
    assert plain.model.backbone._compiled_call_impl is None
    # compiled in place: the checkpoint keys are the model's own
    assert list(model.state_dict()) == list(plain.model.state_dict())
    for (key, a), (_, b) in zip(plain.model.state_dict().items(), model.state_dict().items()):
        torch.testing.assert_close(a, b, msg=key)


@pytest.mark.parametrize('options, error', [
    (dict(channels_last='yes'), 'channels_last must be True, False or None'),
    (dict(compile='max-autotune'), 'compile must be True, False or a dict'),
])
def test_bad_run_options_are_refused(tmp_path, options, error):
    with pytest.raises(TypeError, match=error):
        train(tmp_path, 'bad', **options)


def test_unknown_compile_part_is_refused_with_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['heads'\].*valid parts are"):
        train(tmp_path, 'bad_parts', compile=dict(parts=['backbone', 'heads'], backend='eager'))
