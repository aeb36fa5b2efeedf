# Faster R-CNN R-50-FPN on Pascal VOC 2007+2012 trainval, tested on VOC2007 test
# with 11-point mAP, as MMDetection 3.3 trains it:
#   python tools/train.py configs/pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py', '../_base_/datasets/voc0712.py',
    '../_base_/schedules/schedule_voc0712.py', '../_base_/default_runtime.py'
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=20)))
