"""Plot training curves and time training from mmengine's JSON logs.

``python tools/analysis_tools/analyze_logs.py plot_curve LOG.json [LOG2.json ...]
--keys loss_cls loss_bbox [--legend ...] [--title ...] --out FIG.png``

``python tools/analysis_tools/analyze_logs.py cal_train_time LOG.json [--include-outliers]``

LOG.json is ``work_dirs/<config>/<timestamp>/vis_data/<timestamp>.json``: one
JSON object per line, training lines (``loss``, ``lr``, ``time``, ``step``,
...) and validation lines (``coco/bbox_mAP``, ..., ``step``).
"""
import argparse
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List

import matplotlib
import numpy as np

from detlab.utils import atomic_write

#: Keys of a log line that are bookkeeping, not curves.
STEP_KEYS = ('step', 'iter', 'epoch')


class TrainingLog:
    """The training and validation records of one JSON log.

    Attributes:
        train (list[dict]): Lines with training values (no ``/`` in their keys).
        val (list[dict]): Lines with metrics (keys such as ``coco/bbox_mAP``).
        by_epoch (bool): Training lines carry an ``epoch``.
    """

    def __init__(self, path: str) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'Log file not found: {path}')
        self.path = path
        self.train: List[dict] = []
        self.val: List[dict] = []
        with open(path, encoding='utf-8') as log_file:
            for number, line in enumerate(log_file, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path}:{number} is not a JSON line ({error}); give the '
                                     'vis_data/<timestamp>.json log of a run.') from None
                is_val = any('/' in key for key in record)
                (self.val if is_val else self.train).append(record)
        self.by_epoch = any('epoch' in record for record in self.train)

    def keys(self) -> List[str]:
        names = {key for record in self.train + self.val for key in record}
        return sorted(names - set(STEP_KEYS))

    def series(self, key: str):
        """(xs, ys, x label) of ``key``; a metric may be named without its
        prefix (``bbox_mAP`` for ``coco/bbox_mAP``).

        Raises:
            KeyError: The log has no such key; the message lists those it has.
        """
        for records, is_val in ((self.train, False), (self.val, True)):
            for record in records:
                match = next((name for name in record
                              if name == key or name.split('/')[-1] == key), None)
                if match is not None:
                    points = [(r['step'], r[match]) for r in records if match in r]
                    label = 'epoch' if is_val and self.by_epoch else 'iter'
                    return [x for x, _ in points], [y for _, y in points], label
        raise KeyError(f'{self.path} has no key {key!r}; it has {self.keys()}.')


def plot_curve(logs: List[TrainingLog], args: argparse.Namespace) -> None:
    """Draw each key of each log as a curve and save the figure to ``args.out``."""
    matplotlib.use(args.backend or 'Agg')
    import matplotlib.pyplot as plt
    legend = args.legend or [f'{osp.basename(log.path)}_{key}' for log in logs
                             for key in args.keys]
    if len(legend) != len(logs) * len(args.keys):
        raise ValueError(f'--legend needs {len(logs) * len(args.keys)} names (one per log and '
                         f'key), got {len(legend)}.')
    figure, axis = plt.subplots(figsize=(8, 5))
    names = iter(legend)
    for log in logs:
        for key in args.keys:
            xs, ys, x_label = log.series(key)
            print(f'plot curve of {log.path}, metric is {key}')
            axis.plot(xs, ys, label=next(names), marker='o' if len(xs) < 30 else None)
            axis.set_xlabel(x_label)
    axis.grid(alpha=0.3)
    axis.legend()
    if args.title:
        axis.set_title(args.title)
    if args.out is None:
        plt.show()
    else:
        print(f'save curve to: {args.out}')
        atomic_write(args.out, lambda tmp_path: figure.savefig(tmp_path, dpi=120,
                                                               bbox_inches='tight'))
    plt.close(figure)


def cal_train_time(logs: List[TrainingLog], args: argparse.Namespace) -> Dict[str, float]:
    """Print the seconds per iteration of each epoch (one group for iteration-based
    runs), leaving out each group's first iteration unless ``include_outliers``.

    Returns:
        dict: the last log's ``slowest``, ``fastest``, ``std`` and ``average``.
    """
    summary = {}
    for log in logs:
        print(f'{"-" * 5}Analyze train time of {log.path}{"-" * 5}')
        groups = defaultdict(list)
        for record in log.train:
            if 'time' in record:
                groups[record.get('epoch', 1)].append(record['time'])
        times = [values if args.include_outliers else values[1:] for values in groups.values()]
        times = [values for values in times if values]
        if not times:
            raise KeyError(f'{log.path} has too few timed iterations; lower the logger '
                           'interval so that each epoch logs at least two.')
        means = np.array([np.mean(values) for values in times])
        epochs = list(groups)
        summary = dict(slowest=float(means.max()), fastest=float(means.min()),
                       std=float(means.std()), average=float(means.mean()))
        print(f'slowest epoch {epochs[means.argmax()]}, average time is '
              f'{summary["slowest"]:.4f} s/iter')
        print(f'fastest epoch {epochs[means.argmin()]}, average time is '
              f'{summary["fastest"]:.4f} s/iter')
        print(f'time std over epochs is {summary["std"]:.4f}')
        print(f'average iter time: {summary["average"]:.4f} s/iter\n')
    return summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Analyze JSON logs')
    tasks = parser.add_subparsers(dest='task', required=True)
    plot = tasks.add_parser('plot_curve', help='plot curves of training values and metrics')
    plot.add_argument('json_logs', nargs='+', help='vis_data/<timestamp>.json log files')
    plot.add_argument('--keys', nargs='+', default=['bbox_mAP'], help='values to plot')
    plot.add_argument('--title', help='title of the figure')
    plot.add_argument('--legend', nargs='+', default=None, help='one name per log and key')
    plot.add_argument('--backend', default=None, help='matplotlib backend (default Agg)')
    plot.add_argument('--out', default=None, help='image file to save the figure to')
    timing = tasks.add_parser('cal_train_time', help='seconds per training iteration')
    timing.add_argument('json_logs', nargs='+', help='vis_data/<timestamp>.json log files')
    timing.add_argument('--include-outliers', action='store_true',
                        help="count each epoch's first iteration too")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logs = [TrainingLog(path) for path in args.json_logs]
    {'plot_curve': plot_curve, 'cal_train_time': cal_train_time}[args.task](logs, args)


if __name__ == '__main__':
    main()
