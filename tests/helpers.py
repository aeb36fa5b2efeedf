"""Code shared by detlab's tests: the repo root, the coco128 folder, running the tools
in a fresh process as a user does, and the tiny-run options of the quickstart."""
import importlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO128 = REPO_ROOT.parent / 'shared' / 'data' / 'coco128'
QUICKSTART = 'configs/quickstart/retinanet_r18_fpn_shapes.py'
NUM_VAL = 8


def require_coco128() -> Path:
    """The coco128 folder beside the repo, or a skip saying where it was looked for."""
    if not (COCO128 / 'annotations' / 'instances_train2017.json').is_file():
        pytest.skip(f'coco128 not found at {COCO128} (it lives beside the repo, in ../shared)')
    return COCO128


def tiny_run_options(data_root: Path, max_iters: int) -> list:
    """--cfg-options that shrink the quickstart to a few iterations on tiny data."""
    ann_val = f'{data_root}/annotations/instances_val.json'
    options = [
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=4', f'val_evaluator.ann_file={ann_val}',
        f'test_evaluator.ann_file={ann_val}',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
                    f'{loader}.dataset.data_root={data_root}/']
    options += ['train_dataloader.dataset.num_images=16',
                f'val_dataloader.dataset.num_images={NUM_VAL}',
                f'test_dataloader.dataset.num_images={NUM_VAL}']
    return options


def free_port() -> int:
    """A free TCP port on localhost, so parallel torchrun jobs don't collide."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def run_tool(*args, launcher=None, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = launcher or [sys.executable]
    result = subprocess.run([*command, *map(str, args)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result


def last_metric(output: str, key: str = 'coco/bbox_mAP') -> float:
    """The last value of ``key`` that a tool printed."""
    values = re.findall(rf'{re.escape(key)}: ([0-9.]+)', output)
    assert values, f'{key} not found in output'
    return float(values[-1])


def logged_losses(work_dir: Path) -> list:
    """Every training record of the run's scalars.json: dicts of loss terms by iteration."""
    import json
    records = []
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    return [record for record in records if 'loss' in record]


def assert_ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


#: Score threshold of the briefly trained quickstart model: after a few
#: iterations every score is near the focal-loss prior 0.01, so the default
#: 0.05 would leave no boxes to compare.
QUICKSTART_TEST_SCORE_THR = 0.005


def load_tool(path: str):
    """Import a script under tools/ (e.g. ``'tools/train.py'``) as a module, without putting
    tools/ on sys.path."""
    import importlib.util
    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(f'detlab_tool_{name}', REPO_ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VOC_XML = """<annotation>
  <filename>{img_id}.jpg</filename>
  {size}
  {objects}
</annotation>"""
OBJECT = """<object><name>{name}</name><difficult>{difficult}</difficult>
  <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"""


def write_voc(root, year, images):
    """images: img_id -> (size or None, [(name, difficult, x1, y1, x2, y2)])."""
    base = root / year
    for sub in ('Annotations', 'JPEGImages', 'ImageSets/Main'):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for img_id, (size, objects) in images.items():
        width, height = size or (60, 40)
        cv2.imwrite(str(base / 'JPEGImages' / f'{img_id}.jpg'),
                    np.zeros((height, width, 3), np.uint8))
        size_xml = '' if size is None else (
            f'<size><width>{width}</width><height>{height}</height><depth>3</depth></size>')
        objects_xml = ''.join(
            OBJECT.format(name=n, difficult=d, x1=x1, y1=y1, x2=x2, y2=y2)
            for n, d, x1, y1, x2, y2 in objects)
        (base / 'Annotations' / f'{img_id}.xml').write_text(
            VOC_XML.format(img_id=img_id, size=size_xml, objects=objects_xml))
    (base / 'ImageSets/Main/trainval.txt').write_text('\n'.join(images) + '\n')


def tool_device() -> str:
    """The device tools/train.py and tools/test.py run on here (mmengine's choice: the first
    GPU when there is one), so in-process results compared with theirs use the same one."""
    from mmengine.device import get_device
    return 'cuda:0' if get_device() == 'cuda' else get_device()


def prediction_tolerance() -> dict:
    """Tolerances for comparing detections of one model computed in two processes on
    :func:`tool_device`: identical arithmetic on the CPU; on a GPU, cuDNN may pick other
    algorithms in another process (TF32 on by default), so boxes may move by hundredths
    of a pixel and scores by 1e-4."""
    if tool_device() == 'cpu':
        return dict(box=1e-3, score=1e-5)
    return dict(box=2e-2, score=1e-4)


#: Runs a command and prints its peak resident memory (KiB, Linux) as the last line of stderr.
_PEAK_RSS_WRAPPER = '''
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
sys.stderr.write(f"\\npeak_rss_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(code)
'''


def run_tool_peak_rss(*args, timeout=600) -> tuple:
    """:func:`run_tool`, and the tool process's peak resident memory in MiB.

    The tool runs as the only child of a small wrapper process, so the peak
    is that of the tool alone, not of anything this test process ran before.
    """
    result = run_tool('-c', _PEAK_RSS_WRAPPER, sys.executable, *args, timeout=timeout)
    stderr, _, peak = result.stderr.rstrip().rpartition('peak_rss_kib=')
    result.stderr = stderr
    return result, int(peak) / 1024


def write_png_bomb(path, width: int, height: int) -> None:
    """A valid grey PNG of ``width`` x ``height`` black pixels that takes a few hundred
    kilobytes on disk (30000 x 30000: 0.9 MB) and as many bytes as pixels decoded.

    The deflate stream repeats one compressed block of rows, each ended by a full
    flush (which makes the compressor forget its history, so every block comes out
    the same), instead of compressing every row.
    """
    import math
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack(
            '>I', zlib.crc32(kind + data) & 0xffffffff)

    rows = math.gcd(height, 500)  # rows per repeated block
    block = b'\x00' * ((width + 1) * rows)  # filter byte 0 and the row's zeros
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(height // rows):
        checksum = zlib.adler32(block, checksum)
    stream = (b'\x78\xda' + deflated * (height // rows) + compressor.flush(zlib.Z_FINISH) +
              struct.pack('>I', checksum))
    header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    Path(path).write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) +
                           chunk(b'IDAT', stream) + chunk(b'IEND', b''))


def fill_seeded_weights(model, seed: int = 0) -> None:
    """Give every float entry of ``model.state_dict()`` seeded, well-scaled values.

    Entries are filled in sorted key order from one generator, so two models with
    the same keys and shapes (detlab's and MMDetection's) get the same weights;
    tools/dev/measure_backbones.py uses it to pin MMDetection's outputs. Convs
    get He-scaled normals, norms weights near 1, running variances in
    [0.5, 1.5), so that deep backbones neither vanish nor overflow.
    """
    import torch
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    filled = {}
    for key in sorted(state):
        value = state[key]
        if not value.is_floating_point():
            continue
        noise = torch.randn(value.shape, generator=generator)
        if key.endswith('running_var'):
            filled[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif value.dim() > 1:
            fan_in = value[0].numel()
            filled[key] = noise * (2.0 / fan_in)**0.5
        elif key.endswith('weight'):
            filled[key] = 1 + 0.1 * noise
        else:
            filled[key] = 0.1 * noise
    model.load_state_dict(filled, strict=False)


def state_dict_signature(model) -> tuple:
    """(number of entries, SHA-1 of the sorted (key, shape) list) of a model's state_dict.

    tools/dev/measure_backbones.py prints it for MMDetection's models; tests pin it.
    """
    import hashlib
    shapes = sorted((k, tuple(v.shape)) for k, v in model.state_dict().items())
    return len(shapes), hashlib.sha1(repr(shapes).encode()).hexdigest()


def grid_assigner_case(seed: int = 0):
    """Seeded priors (a 6x6 grid of 16-pixel cells, 3 anchors each), 5 gts, and
    responsible flags (the cell holding each gt's centre), for GridAssigner's tests and
    tools/dev/measure_backbones.py."""
    import torch
    from mmengine.structures import InstanceData
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(6.) * 16 + 8, torch.arange(6.) * 16 + 8, indexing='ij')
    centers = torch.stack([xs, ys], -1).reshape(-1, 1, 2).repeat(1, 3, 1).reshape(-1, 2)
    sizes = torch.tensor([[12., 10.], [20., 30.], [40., 28.]]).repeat(36, 1)
    priors = torch.cat([centers - sizes / 2, centers + sizes / 2], 1)
    xy = torch.rand(5, 2, generator=generator) * 70
    gts = torch.cat([xy, xy + 8 + torch.rand(5, 2, generator=generator) * 30], 1)
    gt_cells = (((gts[:, :2] + gts[:, 2:]) / 2) // 16).long().clamp(max=5)
    responsible = torch.zeros(36, 3, dtype=torch.uint8)
    responsible[gt_cells[:, 1] * 6 + gt_cells[:, 0]] = 1
    return (InstanceData(priors=priors, responsible_flags=responsible.reshape(-1)),
            InstanceData(bboxes=gts, labels=torch.arange(5) * 7))


#: A VOC2007 split for the VOC tests: boxes with a difficult flag, a class VOC lacks
#: (unicorn), an image without <size> and one without objects.
VOC2007 = {
    '000001': ((100, 80), [('dog', 0, 11, 21, 50, 60), ('person', 1, 1, 1, 30, 40),
                           ('unicorn', 0, 5, 5, 20, 20), ('cat', 0, 70, 50, 120, 80)]),
    '000002': (None, [('car', 0, 2, 3, 12, 13)]),  # no <size>: read from the image
    '000003': ((50, 50), []),
}


def original_swin_checkpoint(state_dict: dict, seed: int = 0) -> dict:
    """The checkpoint the original Swin repository would publish for these weights.

    ``state_dict`` has MMDetection's SwinTransformer keys (no ``backbone.`` prefix);
    the result has the original's (``layers``, ``attn.qkv``, ``mlp.fc1``,
    ``patch_embed.proj``, PatchMerging weights in the original channel order) under
    ``'model'``, plus a seeded classifier ``head`` and final ``norm``, which loading
    drops or ignores. ``swin_converter`` maps it back to ``state_dict``.
    """
    import torch
    order = [0, 2, 1, 3]  # blocks of the 2x2 neighbourhood: row-major <-> original order
    original = {}
    for key, value in state_dict.items():
        new_key = key
        if key.startswith('stages'):
            new_key = key.replace('stages', 'layers', 1).replace('attn.w_msa.', 'attn.')
            new_key = new_key.replace('ffn.layers.0.0.', 'mlp.fc1.').replace(
                'ffn.layers.1.', 'mlp.fc2.')
            if 'downsample.reduction.' in key:
                out_channels, in_channels = value.shape
                value = value.reshape(out_channels, in_channels // 4, 4).transpose(1, 2)
                value = value[:, order, :].reshape(out_channels, in_channels)
            elif 'downsample.norm.' in key:
                value = value.reshape(-1, 4).transpose(0, 1)[order, :].reshape(-1)
        elif key.startswith('patch_embed.projection'):
            new_key = key.replace('projection', 'proj')
        original[new_key] = value.clone()
    generator = torch.Generator().manual_seed(seed)
    channels = max(v.shape[0] for k, v in state_dict.items() if k.startswith('norm'))
    original.update({'head.weight': torch.randn(10, channels, generator=generator),
                     'head.bias': torch.randn(10, generator=generator),
                     'norm.weight': torch.randn(channels, generator=generator),
                     'norm.bias': torch.randn(channels, generator=generator)})
    return {'model': original}


def original_pvt_checkpoint(state_dict: dict, seed: int = 0) -> dict:
    """The checkpoint the original PVT repository would publish for these weights.

    ``state_dict`` has MMDetection's PyramidVisionTransformer(V2) keys; the result has
    the original's (``patch_embed{i}``, ``pos_embed{i}``, ``block{i}.{j}`` with separate
    ``attn.q`` and ``attn.kv``, ``mlp.fc1``/``fc2`` linears, ``norm{i}``), a class token
    in front of a 7x7 last position embedding, and a seeded ``head``, ``norm`` and
    ``cls_token``, which loading drops. ``pvt_convert`` maps it back to ``state_dict``.
    """
    import torch
    with_pos = any('pos_embed' in key for key in state_dict)
    generator = torch.Generator().manual_seed(seed)
    original = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        stage = int(parts[1]) + 1
        if parts[2] == '0':
            new_key = f'patch_embed{stage}.' + '.'.join(parts[3:]).replace('projection', 'proj')
        elif parts[2] == '2':
            new_key = f'norm{stage}.' + '.'.join(parts[3:])
        elif parts[4] == 'pos_embed':
            new_key = f'pos_embed{stage}'
            if stage == 4 and value.shape[1] == 49:
                cls_embed = torch.randn(1, 1, value.shape[2], generator=generator)
                value = torch.cat([cls_embed, value], dim=1)
        else:
            rest = '.'.join(parts[4:])
            prefix = f'block{stage}.{int(parts[3]) - with_pos}.'
            if rest.startswith('attn.attn.in_proj_'):
                which = rest[len('attn.attn.in_proj_'):]
                channels = value.shape[0] // 3
                original[prefix + f'attn.q.{which}'] = value[:channels].clone()
                original[prefix + f'attn.kv.{which}'] = value[channels:].clone()
                continue
            rest = rest.replace('attn.attn.out_proj.', 'attn.proj.')
            if rest.startswith('ffn.layers.'):
                index, name = rest.split('.')[2:]
                fc2 = '4' if any('ffn.layers.4' in k for k in state_dict) else '3'
                layer = {'0': 'mlp.fc1', '1': 'mlp.dwconv.dwconv', fc2: 'mlp.fc2'}[index]
                if layer != 'mlp.dwconv.dwconv' and name == 'weight':
                    value = value.flatten(1)
                rest = f'{layer}.{name}'
            new_key = prefix + rest
        original[new_key] = value.clone()
    channels = max(v.shape[-1] for k, v in original.items() if k.endswith('norm2.weight'))
    original.update({'head.weight': torch.randn(10, channels, generator=generator),
                     'head.bias': torch.randn(10, generator=generator),
                     'norm.weight': torch.randn(channels, generator=generator),
                     'cls_token': torch.randn(1, 1, channels, generator=generator)})
    return original


_MMCV_OPS = {}


def _mmcv_ops() -> dict:
    """The parts of ``mmcv.ops`` that tests compare with, by name. ``mmcv.ops`` needs mmcv's
    compiled extension, which mmcv-lite lacks; tools/dev/mmdet_reference.py's stand-in lets it
    import. Imported once per process (a second import would register mmcv's ops twice); the
    modules it touched are removed from ``sys.modules`` at once, this keeps what tests use."""
    if not _MMCV_OPS:
        before = set(sys.modules)
        try:
            load_tool('tools/dev/mmdet_reference.py')._install_ext_stand_in()
            deform_roi_pool = importlib.import_module('mmcv.ops.deform_roi_pool')
            from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
            _MMCV_OPS['multi_scale_deformable_attn_pytorch'] = multi_scale_deformable_attn_pytorch
            _MMCV_OPS['deform_roi_pool'] = deform_roi_pool
        finally:
            for name in set(sys.modules) - before:
                del sys.modules[name]
    return _MMCV_OPS


def mmcv_deformable_attn_reference():
    """mmcv's ``multi_scale_deformable_attn_pytorch`` (per-level ``grid_sample``, autograd's
    gradients), on any device."""
    return _mmcv_ops()['multi_scale_deformable_attn_pytorch']


def mmcv_deform_roi_pool_module():
    """mmcv's ``mmcv.ops.deform_roi_pool`` module: its classes build (their compiled
    kernel raises when called)."""
    return _mmcv_ops()['deform_roi_pool']


def deformable_attn_inputs(bs, shapes, heads, dims, queries, points, seed=0, device='cpu'):
    """Seeded ``[value, locations, weights]`` (leaves that require grad) of deformable
    attention on ``device`` and the (L, 2) level shapes; locations reach outside [0, 1] so
    zero padding is exercised."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    levels = len(shapes)
    value = torch.randn(bs, sum(h * w for h, w in shapes), heads, dims, generator=gen)
    locations = torch.rand(bs, queries, heads, levels, points, 2, generator=gen) * 1.4 - 0.2
    weights = torch.rand(bs, queries, heads, levels, points, generator=gen).softmax(-1)
    return ([t.to(device).requires_grad_() for t in (value, locations, weights)],
            torch.tensor(shapes))


def record_syncing_ops():
    """detlab.utils.host_sync's SyncRecorder: records, while active, every aten op it sees
    (``names``) and the ones that would synchronise host and device on an accelerator
    (``syncing``). Run the code on CPU tensors inside ``with record_syncing_ops() as ops:``
    and assert ``not ops.syncing``."""
    from detlab.utils.host_sync import SyncRecorder
    return SyncRecorder()
