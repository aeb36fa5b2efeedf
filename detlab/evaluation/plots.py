"""PNG plots of the error analysis: confusion matrix and per-class PR curves.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot
state, no display needed) and written atomically.
"""
import os.path as osp
import re
from typing import List, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from detlab.utils.atomic import atomic_write
from .functional.analysis import PRCurve, best_f1


def _save_png(figure: Figure, path: str) -> None:
    FigureCanvasAgg(figure)
    atomic_write(path, lambda tmp_path: figure.savefig(tmp_path, format='png'))


def normalize_rows(confusion: np.ndarray) -> np.ndarray:
    """Each row as percentages of its sum (NaN for an all-zero row)."""
    totals = confusion.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(totals > 0, confusion / totals * 100, np.nan)


def plot_confusion_matrix(confusion: np.ndarray, labels: Sequence[str], out_file: str,
                          title: str = 'Normalized Confusion Matrix',
                          color_theme: str = 'plasma') -> str:
    """Draw a row-normalised confusion matrix (percent of each gt class) as a PNG.

    Args:
        confusion (np.ndarray): (K + 1, K + 1) counts, rows gt, columns predicted.
        labels (Sequence[str]): K + 1 names, the last being background.
        out_file (str): Where to write the PNG.
        title (str): Figure title.
        color_theme (str): A matplotlib colour map name.

    Returns:
        str: ``out_file``.
    """
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(f'plot_confusion_matrix: matrix {confusion.shape} does not fit '
                         f'{len(labels)} labels.')
    percent = normalize_rows(confusion)
    size = max(4.0, 0.5 * len(labels))
    figure = Figure(figsize=(size * 1.1, size * 0.9), dpi=120)
    axes = figure.add_subplot()
    colors = matplotlib.colormaps[color_theme].with_extremes(bad='lightgray')  # no gt rows
    image = axes.imshow(percent, cmap=colors, vmin=0, vmax=100)
    figure.colorbar(image, ax=axes)
    axes.set_title(title, fontweight='bold')
    axes.set_xlabel('Prediction Label')
    axes.set_ylabel('Ground Truth Label')
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels=list(labels), rotation=45, ha='left', rotation_mode='anchor')
    axes.set_yticks(ticks, labels=list(labels))
    axes.tick_params(axis='x', bottom=False, top=True, labelbottom=False, labeltop=True)
    for row in range(len(labels)):
        for col in range(len(labels)):
            value = percent[row, col]
            text = '-' if np.isnan(value) else f'{int(value)}%'
            axes.text(col, row, text, ha='center', va='center', size=7,
                      color='white' if not np.isnan(value) and value <= 60 else 'black')
    figure.tight_layout()
    _save_png(figure, out_file)
    return out_file


def _file_stem(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'class'


def plot_pr_curves(curves: Sequence[PRCurve], class_names: Sequence[str],
                   out_dir: str) -> List[str]:
    """One PNG per class: its precision-recall curve with the best-F1 point marked.

    Args:
        curves (Sequence[PRCurve]): From ``pr_curves``, one per class.
        class_names (Sequence[str]): Names, same order.
        out_dir (str): Folder for ``pr_curve_<index>_<name>.png``.

    Returns:
        list[str]: The written files.
    """
    written = []
    for index, (curve, name) in enumerate(zip(curves, class_names)):
        figure = Figure(figsize=(5, 4.5), dpi=100)
        axes = figure.add_subplot()
        if curve.recall.size:
            axes.plot(np.r_[0, curve.recall], np.r_[1, curve.precision], color='tab:blue',
                      label='precision-recall')
            point = best_f1(curve)
            axes.scatter([point.recall], [point.precision], color='tab:red', zorder=3,
                         label=f'best F1 {point.f1:.3f} at score >= {point.score_thr:.3f}')
            axes.legend(loc='lower left')
        else:
            axes.text(0.5, 0.5, 'no detections', ha='center', va='center')
        axes.set_xlim(0, 1.01)
        axes.set_ylim(0, 1.01)
        axes.set_xlabel('Recall')
        axes.set_ylabel('Precision')
        axes.set_title(f'{name} ({curve.num_gts} gt boxes)')
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        path = osp.join(out_dir, f'pr_curve_{index:03d}_{_file_stem(name)}.png')
        _save_png(figure, path)
        written.append(path)
    return written
