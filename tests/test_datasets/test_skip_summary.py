"""BadSampleHook: the skips of every worker and rank in one summary warning at the end."""
import logging
import warnings

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

from detlab.datasets import BadSampleWarning
from detlab.datasets.bad_samples import SkipTally
from detlab.engine.hooks import BadSampleHook
from bad_input_cases import two_bad_images_skipped_once_an_epoch


class CountingModel(BaseModel):
    """A one-weight model that notes whether any sample reached it with skip records."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.saw_records = False

    def forward(self, inputs, data_samples=None, mode='tensor'):
        self.saw_records |= any('skipped_samples' in s.metainfo for s in data_samples)
        loss = self.weight * torch.stack([img.float().mean() for img in inputs]).mean()
        return dict(loss=loss) if mode == 'loss' else loss


@pytest.mark.slow
def test_training_gives_one_summary_of_the_skips_of_all_workers(tmp_path):
    dataset = two_bad_images_skipped_once_an_epoch(tmp_path)  # 2 epochs: 4 skips
    model = CountingModel()
    runner = Runner(
        model=model, work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(dataset=dataset, batch_size=1, num_workers=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None), custom_hooks=[dict(type='BadSampleHook')],
        default_scope='detlab', log_level=logging.INFO,
        experiment_name=f'skips-{tmp_path.name}')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        runner.train()
    summaries = [w for w in caught if issubclass(w.category, BadSampleWarning)]
    assert len(summaries) == 1
    text = str(summaries[0].message)
    assert 'Training skipped 4 sample(s)' in text
    assert '4 x FileNotFoundError, from 2 different sample(s)' in text
    assert 'bad.png' in text and 'bad2.png' in text
    assert not model.saw_records  # popped before the model
    log = (tmp_path / 'work' / runner.timestamp / f'{runner.timestamp}.log').read_text()
    assert log.count('Later skips are counted') == 1 and 'Training skipped 4 sample(s)' in log


def test_counts_of_all_ranks_are_summed_on_rank_0(monkeypatch):
    """after_train gathers every rank's tally (here two, faked) and rank 0 warns once."""
    from detlab.engine.hooks import bad_sample_hook

    def tally(indices, path):
        result = SkipTally()
        result.add([dict(dataset='D', index=i, img_path=path, error_type='OSError',
                         error='OSError: cannot read') for i in indices])
        return result

    hook = BadSampleHook()
    hook.tally = tally([0, 0], 'rank0.png')  # one image drawn twice
    monkeypatch.setattr(bad_sample_hook, 'all_gather_object',
                        lambda obj: [obj, tally([7, 8, 9], 'rank1.png')])
    runner = type('FakeRunner', (), {'logger': logging.getLogger('fake')})()
    with pytest.warns(BadSampleWarning, match=r'(?s)skipped 5 sample.*5 x OSError, from 4 '
                      r'different.*rank0.*rank1'):
        hook.after_train(runner)
    monkeypatch.setattr(bad_sample_hook, 'is_main_process', lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter('error', BadSampleWarning)
        hook.after_train(runner)  # other ranks gather too, but say nothing

