"""Where ``torch.compile`` breaks a detector's backbone, neck or dense head, found on the CPU.

Builds each CONFIG's model (random initial weights, no checkpoint), feeds its parts a random
batch of 2 images of ``--size`` pixels (the neck gets the backbone's outputs, the head the
neck's) and reports for each part:

- ``eval``: ``torch._dynamo.explain`` of the forward in eval mode: the number of graphs and
  every graph break with its reason and the source line it happened at;
- ``train``: the same in train mode, then the part compiled with ``aot_eager`` (forward and
  backward traced by AOTAutograd, no code generation) runs forward and backward twice on the
  same shapes; the report gives the graphs the first call compiled, whether the second call
  compiled any more (a recompile: some guard fails on every call), and the error if tracing
  the backward failed.

``--parts`` picks the parts (default ``backbone,neck,head``); ``head`` is the dense head
(``bbox_head`` of a single-stage detector, ``rpn_head`` of a two-stage one) that
``compile=dict(parts=...)`` compiles; DETR-like heads, which take the transformer's outputs,
are skipped. Nothing here generates code (no inductor), so a config takes seconds. Not run by
CI::

    python tools/dev/compile_audit.py CONFIG [CONFIG ...] [--size 128] [--parts backbone,neck]
"""
import argparse
import logging
import os
import traceback
from dataclasses import dataclass, field
from typing import List, Optional

import torch
import torch._dynamo
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch._dynamo.testing import CompileCounterWithBackend

from detlab.models.detectors.compile_parts import compile_targets
from detlab.registry import MODELS
from detlab.utils import register_all_modules

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class ModeReport:
    """What dynamo made of one part in one mode."""
    graphs: int = 0
    breaks: List[str] = field(default_factory=list)  # 'reason at file:line'
    recompiles: Optional[int] = None  # graphs the second same-shape call compiled (train)
    error: Optional[str] = None


def site(frame) -> str:
    filename = os.path.relpath(frame.filename, REPO) if frame.filename.startswith(REPO) \
        else frame.filename
    return f'{filename}:{frame.lineno} ({frame.name})'


def explain(module: torch.nn.Module, inputs: tuple, report: ModeReport) -> None:
    """Graph count and break reasons of one forward of ``module``."""
    torch._dynamo.reset()
    try:
        explanation = torch._dynamo.explain(module)(*inputs)
    except Exception as error:  # an untraceable part is a finding, not a crash of the tool
        report.error = f'explain failed: {type(error).__name__}: {str(error).splitlines()[0]}'
        return
    report.graphs = explanation.graph_count
    for reason in explanation.break_reasons:
        where = site(reason.user_stack[-1]) if reason.user_stack else '?'
        text = ' '.join(reason.reason.split())[:160]
        report.breaks.append(f'{text} at {where}')


def scalar(outputs) -> torch.Tensor:
    """The sum of every floating tensor in nested outputs, to backpropagate through."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float().sum() if outputs.is_floating_point() else outputs.new_zeros(())
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return sum((scalar(item) for item in outputs), torch.zeros(()))
    return torch.zeros(())


def train_twice(module: torch.nn.Module, inputs: tuple, report: ModeReport) -> None:
    """Forward and backward with ``aot_eager``, twice; how many graphs each call compiled."""
    torch._dynamo.reset()
    counter = CompileCounterWithBackend('aot_eager')
    compiled = torch.compile(module, backend=counter)
    try:
        scalar(compiled(*inputs)).backward()
        first = counter.frame_count
        scalar(compiled(*inputs)).backward()
    except Exception as error:
        lines = traceback.format_exception_only(type(error), error)[0].strip().splitlines()
        report.error = f'aot_eager train step failed: {lines[0][:200]}'
        return
    report.recompiles = counter.frame_count - first
    module.zero_grad(set_to_none=True)


def part_inputs(model, size: int, parts: List[str]):
    """(name, module, inputs in eval mode, inputs in train mode) for each part present."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, size, size, generator=generator)
    targets = compile_targets(model, parts, strict=False)
    found = []
    for mode in ('eval', 'train'):
        model.train(mode == 'train')
        with torch.no_grad():
            features = model.backbone(images) if hasattr(model, 'backbone') else None
            neck_features = model.neck(features) if getattr(model, 'neck', None) else features
        inputs = dict(backbone=(images, ), neck=(features, ), head=(neck_features, ))
        found.append({name: inputs[name] for name in targets})
    return [(name, module, found[0][name], found[1][name])
            for name, module in targets.items()]


def audit(config: str, size: int, parts: List[str]):
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    model_cfg.pop('data_preprocessor', None)
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    results = []
    for name, module, eval_inputs, train_inputs in part_inputs(model, size, parts):
        eval_report, train_report = ModeReport(), ModeReport()
        module.eval()
        with torch.no_grad():
            explain(module, eval_inputs, eval_report)
        module.train()
        explain(module, train_inputs, train_report)
        train_twice(module, train_inputs, train_report)
        results.append((name, type(module).__name__, eval_report, train_report))
    return results


def print_report(config: str, results) -> None:
    print(f'{config}:')
    for name, type_name, *reports in results:
        for mode, report in zip(('eval', 'train'), reports):
            recompiles = '' if report.recompiles is None else \
                f', second call compiled {report.recompiles} more'
            print(f'  {name:8s} {type_name:20s} {mode:5s}: {report.graphs} graph(s), '
                  f'{len(report.breaks)} break(s){recompiles}')
            for line in report.breaks:
                print(f'      break: {line}')
            if report.error:
                print(f'      ERROR: {report.error}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--size', type=int, default=128, help='square input size')
    parser.add_argument('--parts', default='backbone,neck,head',
                        help='comma-separated parts: backbone, neck, head')
    args = parser.parse_args()
    register_all_modules()
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    torch._dynamo.config.recompile_limit = 64  # report recompiles rather than fall back
    parts = [part for part in args.parts.split(',') if part]
    for config in args.configs:
        print_report(config, audit(config, args.size, parts))


if __name__ == '__main__':
    main()
