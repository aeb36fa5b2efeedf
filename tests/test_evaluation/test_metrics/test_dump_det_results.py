"""DumpDetResults writes MMDetection's result format; load_det_results reads it safely."""
import collections
import json
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.evaluation.metrics import DumpDetResults, load_det_results
from detlab.structures import DetDataSample


def _sample(img_id: int) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(img_id=img_id, img_path=f'{img_id}.jpg',
                                         ori_shape=(40, 60), img_shape=(80, 120),
                                         scale_factor=(2.0, 2.0)))
    sample.gt_instances = InstanceData(bboxes=torch.ones(1, 4), labels=torch.zeros(1).long())
    sample.ignored_instances = InstanceData()
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[1., 2., 3., 4.]]),
                                         scores=torch.tensor([0.5]), labels=torch.tensor([3]))
    return sample


def _mmdet_record(img_id: int) -> dict:
    """A record as MMDetection 3.3's DumpDetResults pickles it (metainfo + preds)."""
    return dict(img_id=img_id, img_path=f'{img_id}.jpg', ori_shape=(40, 60),
                img_shape=(80, 120), scale_factor=(2.0, 2.0), flip=False, flip_direction=None,
                batch_input_shape=(96, 128), homography_matrix=np.eye(3, dtype=np.float32),
                pad_shape=(96, 128), score=np.float32(0.5),
                pred_instances=dict(bboxes=torch.tensor([[1., 2., 3., 4.]]),
                                    scores=torch.tensor([0.5]), labels=torch.tensor([3])),
                extra=collections.OrderedDict(a=torch.arange(3)[1:]))


@pytest.mark.parametrize('suffix', ['.pkl', '.json'])
def test_dump_writes_mmdet_records_without_gt(tmp_path, suffix):
    path = str(tmp_path / f'out{suffix}')
    metric = DumpDetResults(out_file_path=path)
    metric.process({}, [_sample(1).to_dict(), _sample(2)])
    assert metric.evaluate(2) == {}
    assert os.listdir(tmp_path) == [f'out{suffix}']
    records = load_det_results(path)
    assert [r['img_id'] for r in records] == [1, 2]
    for record in records:
        assert 'gt_instances' not in record and 'ignored_instances' not in record
        assert tuple(record['ori_shape']) == (40, 60)
        assert tuple(record['scale_factor']) == (2.0, 2.0)
        pred = record['pred_instances']
        assert torch.equal(pred['bboxes'], torch.tensor([[1., 2., 3., 4.]]))
        assert pred['labels'].dtype == torch.int64 and pred['labels'].tolist() == [3]
    if suffix == '.pkl':  # MMDetection's tools unpickle it: tensors on the CPU
        raw = pickle.loads((tmp_path / 'out.pkl').read_bytes())
        assert isinstance(raw[0]['pred_instances']['scores'], torch.Tensor)
    else:
        assert json.loads((tmp_path / 'out.json').read_text())[0]['pred_instances'][
            'scores'] == [0.5]


def test_reads_mmdet_pickle(tmp_path):
    path = tmp_path / 'mmdet.pkl'
    path.write_bytes(pickle.dumps([_mmdet_record(7), _mmdet_record(8)], protocol=2))
    records = load_det_results(str(path))
    assert [r['img_id'] for r in records] == [7, 8]
    np.testing.assert_array_equal(records[0]['homography_matrix'], np.eye(3))
    assert records[0]['score'] == np.float32(0.5)
    assert torch.equal(records[1]['extra']['a'], torch.tensor([1, 2]))
    assert records[1]['pred_instances']['scores'].tolist() == [0.5]


class _Exploit:
    def __reduce__(self):
        return (os.system, ('touch pwned',))


def test_refuses_pickles_that_build_other_objects(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps([dict(pred_instances=dict(), x=_Exploit())]))
    with pytest.raises(pickle.UnpicklingError, match=r'evil.pkl asks for (posix|os)\.system'):
        load_det_results(str(path))
    assert not (tmp_path / 'pwned').exists()


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        load_det_results(str(tmp_path / 'nope.pkl'))
    path = tmp_path / 'dict.pkl'
    path.write_bytes(pickle.dumps(dict(a=1)))
    with pytest.raises(ValueError, match='holds a dict'):
        load_det_results(str(path))
    path.write_bytes(pickle.dumps([dict(pred_instances=dict(bboxes=[]))]))
    with pytest.raises(ValueError, match=r"record 0 pred_instances lacks \['scores', 'labels'\]"):
        load_det_results(str(path))
    with pytest.raises(ValueError, match='must end with'):
        DumpDetResults(out_file_path=str(tmp_path / 'out.txt'))
