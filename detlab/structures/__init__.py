from .det_data_sample import DetDataSample, OptSampleList, SampleList

__all__ = ['DetDataSample', 'SampleList', 'OptSampleList']
