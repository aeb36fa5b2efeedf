import pytest
import torch
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS

from detlab.models.backbones import ResNet
from detlab.models.layers import PretrainedInit
from detlab.utils import register_all_modules

TINY = dict(depth=18, num_stages=1, strides=(1,), dilations=(1,), out_indices=(0,))


class NotAStateDict:
    """A pickled custom object: detlab must refuse to unpickle it."""


@pytest.fixture(autouse=True)
def detlab_scope():
    register_all_modules()


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))


def test_detlab_scope_builds_detlab_pretrained():
    with MMENGINE_WEIGHT_INITIALIZERS.switch_scope_and_registry(None) as registry:
        assert registry.get('Pretrained') is PretrainedInit


def test_torchvision_resnet50_raises_offline_error_naming_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    model = ResNet(depth=50, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))
    with pytest.raises(RuntimeError, match='never downloads') as info:
        model.init_weights()
    message = str(info.value)
    assert 'https://download.pytorch.org/models/resnet50-0676ba61.pth' in message
    assert str(tmp_path / 'hub' / 'checkpoints' / 'resnet50-0676ba61.pth') in message
    assert "init_cfg=dict(type='Pretrained', checkpoint=" in message


def test_torchvision_name_loads_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    source = ResNet(depth=18)
    source.init_weights()
    torch.nn.init.normal_(source.layer4[1].bn2.weight)
    cached = tmp_path / 'hub' / 'checkpoints' / 'resnet18-f37072fd.pth'
    cached.parent.mkdir(parents=True)
    torch.save(source.state_dict(), cached)
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'))
    model.init_weights()
    assert _same_weights(model, source)


def test_unknown_model_zoo_name_lists_close_names(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet5O'))
    with pytest.raises(RuntimeError, match='never downloads') as info:
        model.init_weights()
    assert "'resnet5O'" in str(info.value) and 'resnet50' in str(info.value)


@pytest.mark.parametrize('checkpoint', [
    'open-mmlab://detectron2/resnet50_caffe', 'https://download.openmmlab.com/x.pth',
    'http://host/x.pth', 'modelzoo://resnet50', 's3://bucket/x.pth'])
def test_remote_checkpoint_raises_offline_error(checkpoint):
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    with pytest.raises(RuntimeError, match='never downloads') as info:
        model.init_weights()
    assert repr(checkpoint) in str(info.value)


def test_local_resnet18_state_dict_loads(tmp_path):
    source = ResNet(depth=18)
    source.init_weights()
    torch.nn.init.normal_(source.layer4[1].bn2.weight)
    path = tmp_path / 'r18.pth'
    torch.save(source.state_dict(), path)
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    assert not _same_weights(model, source)
    model.init_weights()
    assert _same_weights(model, source)


def test_checkpoint_dict_with_state_dict_and_data_parallel_prefix(tmp_path):
    source = ResNet(**TINY)
    weights = {f'module.{k}': v + 1 for k, v in source.state_dict().items()}
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': weights, 'meta': {'epoch': 3, 'classes': ('a', 'b')}}, path)
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.conv1.weight, source.conv1.weight + 1)


def test_prefix_selects_a_sub_dict(tmp_path):
    source = ResNet(**TINY)
    detector = {f'backbone.{k}': v + 2 for k, v in source.state_dict().items()}
    detector['neck.conv.weight'] = torch.zeros(1)
    path = tmp_path / 'detector.pth'
    torch.save({'state_dict': detector}, path)
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                         prefix='backbone'))
    model.init_weights()
    assert torch.equal(model.conv1.weight, source.conv1.weight + 2)
    bad = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='head.'))
    with pytest.raises(KeyError, match=r"\['backbone.', 'neck.'\]"):
        bad.init_weights()


def test_extra_and_missing_keys_are_tolerated(tmp_path):
    source = ResNet(**TINY)
    weights = {k: v + 3 for k, v in source.state_dict().items() if not k.startswith('layer1')}
    weights['fc.weight'] = torch.zeros(10, 64)
    path = tmp_path / 'partial.pth'
    torch.save(weights, path)
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    layer1_before = model.layer1[0].conv1.weight.clone()
    model.init_weights()
    assert torch.equal(model.conv1.weight, source.conv1.weight + 3)
    assert torch.equal(model.layer1[0].conv1.weight, layer1_before)


def test_missing_local_file_names_the_path(tmp_path):
    path = str(tmp_path / 'absent.pth')
    model = ResNet(**TINY, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        model.init_weights()


def test_arbitrary_pickled_objects_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'conv1.weight': torch.zeros(1)}, 'obj': NotAStateDict()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        PretrainedInit(checkpoint=str(path))(ResNet(**TINY))


def test_file_without_a_state_dict_is_rejected(tmp_path):
    path = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], path)
    with pytest.raises(TypeError, match='does not hold a state dict'):
        PretrainedInit(checkpoint=str(path))(ResNet(**TINY))
