_base_ = [
    '../_base_/models/rpn_r50_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]

# Proposal recall, as MMDetection evaluates an RPN.
val_evaluator = dict(metric='proposal_fast')
test_evaluator = val_evaluator
