"""MMDetection 3.3's Cascade (Mask) R-CNN configs on other backbones (HRNet, Res2Net,
ResNeSt, RegNet, DCN, gcnet, ResNet strikes back), its GN, GN+WS, from-scratch,
self-supervised-pretraining and strong-baseline recipes, and the other recipes of folders
detlab has (R-101, caffe, C4, DC5, LSJ, 90k, AMP, IoU-loss variants, ...) build in detlab
with MMDetection's state_dict keys and shapes; detlab's copies under configs/ are
MMDetection's files and build the same model; their pretrained backbone names resolve offline or say what to download."""
import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT, state_dict_signature
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope
from detlab.utils.checkpoint import REMOTE_PREFIXES, resolve_checkpoint

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# (entries, SHA-1 of the sorted (key, shape) list) of the models MMDetection 3.3 builds
# from these files, measured by tools/dev/measure_more_backbones.py --more-configs.
MMDET_SIGNATURES = {
    'dcn/cascade-mask-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py': (766, '165ecd2da959f7433cef4d9a42db592fa927b358'),
    'dcn/cascade-mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py': (426, 'c1709500af641a8b3ab4b4472afa0d495f4d8ffc'),
    'dcn/cascade-mask-rcnn_x101-32x4d-dconv-c3-c5_fpn_1x_coco.py': (766, '7c41e434d28718bea029b37e9b37db448f117a58'),
    'dcn/cascade-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py': (730, '8669693784d74ce044685d9662bb80495f1197b1'),
    'dcn/cascade-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py': (390, '37f25660ae8b825eff54d4ff8944d2883785e3b9'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-r16-gcb-c3-c5_fpn_1x_coco.py': (1006, '14475fef1d6572ae284698a9a101089715ca7c92'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-r4-gcb-c3-c5_fpn_1x_coco.py': (1006, 'c9e148026763657c0ee7d14cad6ef54ef821891b'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5_fpn_1x_coco.py': (766, '7c41e434d28718bea029b37e9b37db448f117a58'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-r16-gcb-c3-c5_fpn_1x_coco.py': (946, '43de50d034df1f4b12e1024f9da8338d662123dc'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-r4-gcb-c3-c5_fpn_1x_coco.py': (946, 'ed9ca772f8e2824ae491071a27ef9f46932e133c'),
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py': (706, '7975b3a658c74cf5a12b0dcf80d45dc415b0fc23'),
    'hrnet/cascade-mask-rcnn_hrnetv2p-w18_20e_coco.py': (1908, '908342ee9373f6beb3818dc4cdea503b6987b398'),
    'hrnet/cascade-mask-rcnn_hrnetv2p-w32_20e_coco.py': (1908, 'b20c823fdc1389bb4e421f0ff865e6ff9448c59a'),
    'hrnet/cascade-mask-rcnn_hrnetv2p-w40-20e_coco.py': (1908, 'e3dfdc7dff4322ed639d0b8a4fba696dfe6c43f7'),
    'hrnet/cascade-rcnn_hrnetv2p-w18-20e_coco.py': (1872, '0d1139fb4dc14ebdf60b4038bd3f9e45413b4ce0'),
    'hrnet/cascade-rcnn_hrnetv2p-w32-20e_coco.py': (1872, 'ea62aff0d231c65d8ddbb15e799d6e0543fbaeee'),
    'hrnet/cascade-rcnn_hrnetv2p-w40-20e_coco.py': (1872, '5422b7ff13629485f8556d82bb358dc293e1c34f'),
    'regnet/cascade-mask-rcnn_regnetx-1.6GF_fpn_ms-3x_coco.py': (436, '814b70abb53de4d5cc05bbb76ce5faa47a87cd4c'),
    'regnet/cascade-mask-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py': (562, '59d43f6fa394cee58d8ab2e9c9847b75338ea56d'),
    'regnet/cascade-mask-rcnn_regnetx-400MF_fpn_ms-3x_coco.py': (508, '0c4c353cd72efbad0f252807cb8a4394802b3ccf'),
    'regnet/cascade-mask-rcnn_regnetx-4GF_fpn_ms-3x_coco.py': (526, 'c1822d65ec084d82d59831777ad00978d61624dd'),
    'regnet/cascade-mask-rcnn_regnetx-800MF_fpn_ms-3x_coco.py': (400, 'c608ab4455c6b91e7edec79ed443a6ab511e3095'),
    'res2net/cascade-mask-rcnn_res2net-101_fpn_20e_coco.py': (1114, '064c9af0c9c912a8f56fc9f77cfe4d74fb22b0ff'),
    'res2net/cascade-rcnn_res2net-101_fpn_20e_coco.py': (1078, 'aa0165d20966f104f9e132fb87bac51f524b524d'),
    'resnest/cascade-mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py': (1129, '1ef0bdb58b107462bac5bbfd4e62ed50bbb6f58d'),
    'resnest/cascade-mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py': (670, '07fad8d192a16c35c198daece109b9362e93831e'),
    'resnest/cascade-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco.py': (1045, '049fbe6c63660f2399ae655db7d9f0f616428103'),
    'resnest/cascade-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py': (586, '8d3bb95a1a9289bf248aa3351247f4a87882d52c'),
    'resnet_strikes_back/cascade-mask-rcnn_r50-rsb-pre_fpn_1x_coco.py': (400, '44cdc2133c7e57e1b2ddc82a066a005e8d55abb1'),
    # Recipes: group norm (+ weight standardisation), training from scratch, self-supervised
    # pretraining, large-scale jitter strong baselines and ResNet strikes back pretraining.
    'gn+ws/faster-rcnn_r101_fpn_gn-ws-all_1x_coco.py': (360, '55ab08d5e1ed19cac132325e501d4df87fdd58b7'),
    'gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.py': (207, 'a026114de504ec5fb8cd6ab73ad01d5b2793a3c4'),
    'gn+ws/faster-rcnn_x101-32x4d_fpn_gn-ws-all_1x_coco.py': (360, '12c3842fdc34b09c0e3b3f89a5fe210435bb88d3'),
    'gn+ws/faster-rcnn_x50-32x4d_fpn_gn-ws-all_1x_coco.py': (207, '354554ab0310e4216b1f809c0a595aaa2bd84151'),
    'gn+ws/mask-rcnn_r101_fpn_gn-ws-all_20-23-24e_coco.py': (376, 'b7ba773b2e54ede27c4a850b52b3a95426c5c22e'),
    'gn+ws/mask-rcnn_r101_fpn_gn-ws-all_2x_coco.py': (376, 'b7ba773b2e54ede27c4a850b52b3a95426c5c22e'),
    'gn+ws/mask-rcnn_r50_fpn_gn-ws-all_20-23-24e_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'gn+ws/mask-rcnn_r50_fpn_gn-ws-all_2x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_20-23-24e_coco.py': (376, '6b521d7cd987164cae3ea2c14f20eae89bad8d9b'),
    'gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_2x_coco.py': (376, '6b521d7cd987164cae3ea2c14f20eae89bad8d9b'),
    'gn+ws/mask-rcnn_x50-32x4d_fpn_gn-ws-all_20-23-24e_coco.py': (223, 'de57874b4f5243eaec6332af02f12d550fe1b11e'),
    'gn+ws/mask-rcnn_x50-32x4d_fpn_gn-ws-all_2x_coco.py': (223, 'de57874b4f5243eaec6332af02f12d550fe1b11e'),
    'gn/mask-rcnn_r101_fpn_gn-all_2x_coco.py': (376, 'b7ba773b2e54ede27c4a850b52b3a95426c5c22e'),
    'gn/mask-rcnn_r101_fpn_gn-all_3x_coco.py': (376, 'b7ba773b2e54ede27c4a850b52b3a95426c5c22e'),
    'gn/mask-rcnn_r50-contrib_fpn_gn-all_2x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'gn/mask-rcnn_r50-contrib_fpn_gn-all_3x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'gn/mask-rcnn_r50_fpn_gn-all_2x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'gn/mask-rcnn_r50_fpn_gn-all_3x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'resnet_strikes_back/faster-rcnn_r50-rsb-pre_fpn_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'resnet_strikes_back/mask-rcnn_r50-rsb-pre_fpn_1x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'resnet_strikes_back/retinanet_r50-rsb-pre_fpn_1x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py': (207, 'a026114de504ec5fb8cd6ab73ad01d5b2793a3c4'),
    'scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py': (223, 'dc415e207709a2c220a63de52359abe66c8c9315'),
    'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_1x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_ms-2x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_1x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_ms-2x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-100e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-400e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-100e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-50e_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    # Other recipes of folders detlab had (ATSS, Faster/Mask R-CNN, RetinaNet, RPN, FCOS,
    # RegNet, DCN, FPG, Pascal VOC, simple copy-paste).
    'atss/atss_r101_fpn_1x_coco.py': (675, 'ee9ac8f299894c643e8e229e233c832fe0c3c848'),
    'atss/atss_r101_fpn_8xb8-amp-lsj-200e_coco.py': (675, 'ee9ac8f299894c643e8e229e233c832fe0c3c848'),
    'atss/atss_r18_fpn_8xb8-amp-lsj-200e_coco.py': (171, '15c4dfb05f0da1da39f5a7c36b9f008c41c3fbed'),
    'atss/atss_r50_fpn_8xb8-amp-lsj-200e_coco.py': (369, 'b53c3b926de15ce11ae3c710c3f54f6d7d3e20c3'),
    'dcn/mask-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py': (726, 'fc4e16b14d18185476c11eec9cb961ba8cfa49e7'),
    'dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py': (386, 'f407a79b7b773ab1aa5d930a6af6f31be8fa5136'),
    'dcn/mask-rcnn_r50-dconv-c3-c5_fpn_amp-1x_coco.py': (386, 'f407a79b7b773ab1aa5d930a6af6f31be8fa5136'),
    'dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py': (386, 'e3e457cfb96e35c0b91a3072bf59f8810e46b410'),
    'dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_amp-1x_coco.py': (386, 'e3e457cfb96e35c0b91a3072bf59f8810e46b410'),
    'dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py': (372, '6797f1c4824f41f919993005bea40d2b371e6a55'),
    'dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py': (388, 'f0aab85c80cf5320f0a9933d49a49f4f866e87f7'),
    'faster_rcnn/faster-rcnn_r101-caffe_fpn_1x_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'faster_rcnn/faster-rcnn_r101-caffe_fpn_ms-3x_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'faster_rcnn/faster-rcnn_r101_fpn_8xb8-amp-lsj-200e_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'faster_rcnn/faster-rcnn_r18_fpn_8xb8-amp-lsj-200e_coco.py': (150, 'e2296eada5efe55f51644778c400d05ff7fc0fd5'),
    'faster_rcnn/faster-rcnn_r50-caffe-c4_ms-1x_coco.py': (328, '12a1723f8692ef6d524b548754481b30e70871da'),
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_1x_coco.py': (332, '490df51b4de336a4e6321b81567604bc44250654'),
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_ms-1x_coco.py': (332, '490df51b4de336a4e6321b81567604bc44250654'),
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_ms-3x_coco.py': (332, '490df51b4de336a4e6321b81567604bc44250654'),
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py': (328, '12a1723f8692ef6d524b548754481b30e70871da'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_90k_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco-person-bicycle-car.py': (348, '04eb5f409d32534e0251863b340790d8d55d0033'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco-person.py': (348, '82fbe30db4c82a221ea074c7a2dd28d0f0050659'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-2x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-3x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-90k_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50-tnr-pre_fpn_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_8xb8-amp-lsj-200e_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_amp-1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_ciou_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py': (377, 'def8a68700b95e2716072ee7d8a4f06dbe5459c8'),
    'faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_iou_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_ms-3x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'faster_rcnn/faster-rcnn_r50_fpn_soft-nms_1x_coco.py': (348, '604ba63c9844b6a5df1461d7191fcb6fa79d22e1'),
    'fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py': (675, '2b9d85ccfcaddbcc484e62083ed4157e11835033'),
    'fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py': (675, '2b9d85ccfcaddbcc484e62083ed4157e11835033'),
    'fcos/fcos_r101_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py': (683, '0a58bb8e49003988f3dbd5bda030ca69585e0f49'),
    'fcos/fcos_r18_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py': (179, '8cb6044b0a99299dd831149509ae99931d7c32d9'),
    'fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py': (377, '6779f62ef7493db4004121ba228941b9339902b2'),
    'fcos/fcos_r50-caffe_fpn_gn-head-center_1x_coco.py': (369, 'bc96b2b162f241b07ec6fe691dafc2af23c6bfab'),
    'fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py': (369, 'bc96b2b162f241b07ec6fe691dafc2af23c6bfab'),
    'fcos/fcos_r50-dcn-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py': (407, '1ed040d77ff789e78cabcf8501610ba774294465'),
    'fcos/fcos_r50_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py': (377, '6779f62ef7493db4004121ba228941b9339902b2'),
    'fpg/faster-rcnn_r50_fpn_crop640-50e_coco.py': (380, 'a41186e10dd3d678f5df8be42ea847330879d6c4'),
    'fpg/mask-rcnn_r50_fpn_crop640-50e_coco.py': (408, '8946812a8c0dee38d70966a1b12c1ef9654de00d'),
    'mask_rcnn/mask-rcnn_r50_fpn_1x-wandb_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_2x_coco.py': (666, 'ca2ebd3acb910a74ab0f95af141ed6154f4abca3'),
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco.py': (666, 'ca2ebd3acb910a74ab0f95af141ed6154f4abca3'),
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_1x_coco.py': (666, 'ac17ae58e3694e92556d8a2dbdc77e0acc71d103'),
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_ms-poly-1x_coco.py': (666, 'ac17ae58e3694e92556d8a2dbdc77e0acc71d103'),
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_ms-poly-3x_coco.py': (666, 'ac17ae58e3694e92556d8a2dbdc77e0acc71d103'),
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_1x_coco.py': (666, '9a10be38011ee3278770c2c61021f12c923ef5b0'),
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_2x_coco.py': (666, '9a10be38011ee3278770c2c61021f12c923ef5b0'),
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_ms-poly_3x_coco.py': (666, '9a10be38011ee3278770c2c61021f12c923ef5b0'),
    'pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py': (328, 'f74e34750317d7474ef20619352dd217a574ea5e'),
    'pascal_voc/faster-rcnn_r50_fpn_1x_voc0712-cocofmt.py': (348, 'e7b34dbb84cd0880d1885e3bb64a39b5b1e8edac'),
    'regnet/mask-rcnn_regnetx-1.6GF_fpn_ms-poly-3x_coco.py': (396, 'f91fc35d3552d7ffb270fa345a133f694c9b2ecc'),
    'regnet/mask-rcnn_regnetx-12GF_fpn_1x_coco.py': (414, '5c1527328efa18e52a184cc69b262f28003cb91e'),
    'regnet/mask-rcnn_regnetx-3.2GF-mdconv-c3-c5_fpn_1x_coco.py': (568, 'c60c6e17bf8bbecb21479bac147b451caa954bbc'),
    'regnet/mask-rcnn_regnetx-3.2GF_fpn_1x_coco.py': (522, 'e1c6db245cb250de770f41f9f942f56525a7cf0d'),
    'regnet/mask-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py': (522, 'e1c6db245cb250de770f41f9f942f56525a7cf0d'),
    'regnet/mask-rcnn_regnetx-400MF_fpn_ms-poly-3x_coco.py': (468, '90890af86fdd8e58c9a6cd8e41b335f7a94f1c4a'),
    'regnet/mask-rcnn_regnetx-4GF_fpn_1x_coco.py': (486, '1abfcefbb124a73667c7dc6b91051daf7b0c829b'),
    'regnet/mask-rcnn_regnetx-4GF_fpn_ms-poly-3x_coco.py': (486, '1abfcefbb124a73667c7dc6b91051daf7b0c829b'),
    'regnet/mask-rcnn_regnetx-6.4GF_fpn_1x_coco.py': (378, 'b1779f759ae965a2df5bc2d4153ff9d6cedae17a'),
    'regnet/mask-rcnn_regnetx-800MF_fpn_ms-poly-3x_coco.py': (360, '806e0a1051580c5efd87ac5b002876345856d464'),
    'regnet/mask-rcnn_regnetx-8GF_fpn_1x_coco.py': (486, '3ece2f97af2e0ba1dea408058b0684f14a5930b1'),
    'retinanet/retinanet_r101-caffe_fpn_1x_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r101-caffe_fpn_ms-3x_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r101_fpn_1x_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r101_fpn_2x_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r101_fpn_8xb8-amp-lsj-200e_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r101_fpn_ms-640-800-3x_coco.py': (660, 'da36d761d672bbaa7bc74480da87ed757a0c7f76'),
    'retinanet/retinanet_r18_fpn_1x_coco.py': (156, '2447a3a357565b2d12cdb97ae8a6bbd33b2b93c3'),
    'retinanet/retinanet_r18_fpn_1xb8-1x_coco.py': (156, '2447a3a357565b2d12cdb97ae8a6bbd33b2b93c3'),
    'retinanet/retinanet_r18_fpn_8xb8-amp-lsj-200e_coco.py': (156, '2447a3a357565b2d12cdb97ae8a6bbd33b2b93c3'),
    'retinanet/retinanet_r50-caffe_fpn_1x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50-caffe_fpn_ms-1x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50-caffe_fpn_ms-2x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50-caffe_fpn_ms-3x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50_fpn_8xb8-amp-lsj-200e_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50_fpn_90k_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50_fpn_amp-1x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py': (354, 'd1bdd41e06f1b0e5049b0586a96176bf59e65f69'),
    'rpn/rpn_r101-caffe_fpn_1x_coco.py': (646, '9bfba31be2fba53e1e8d9643a8fb5a577b6fb24f'),
    'rpn/rpn_r101_fpn_1x_coco.py': (646, '9bfba31be2fba53e1e8d9643a8fb5a577b6fb24f'),
    'rpn/rpn_r101_fpn_2x_coco.py': (646, '9bfba31be2fba53e1e8d9643a8fb5a577b6fb24f'),
    'rpn/rpn_r50-caffe-c4_1x_coco.py': (264, 'f1b7497859e749428a2bac01891d394386c035a5'),
    'rpn/rpn_r50-caffe_fpn_1x_coco.py': (340, 'f8362ace8cf75205ddb66b083cf7d193688efd05'),
    'rpn/rpn_r50_fpn_2x_coco.py': (340, 'f8362ace8cf75205ddb66b083cf7d193688efd05'),
    'rpn/rpn_x101-32x4d_fpn_2x_coco.py': (646, 'b8bd019764ead3aaf6f9bfce0a816ab0bdeb0c7a'),
    'rpn/rpn_x101-64x4d_fpn_2x_coco.py': (646, '6d378c2758294421f9d70593e5b4f357f262952e'),
    'simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    'simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-90k_coco.py': (432, '59787920c9c30b74bd6907a6384f3afefa19042b'),
    # FoveaBox: the plain head and the gn-head-align one (FeatureAlign, GN class convs).
    'foveabox/fovea_r101_fpn_4xb4-1x_coco.py': (660, 'f86c5dc9315af3854a6e943ba925de1481963c9b'),
    'foveabox/fovea_r101_fpn_4xb4-2x_coco.py': (660, 'f86c5dc9315af3854a6e943ba925de1481963c9b'),
    'foveabox/fovea_r101_fpn_gn-head-align_4xb4-2x_coco.py': (664, '8bab122494749b4f4b3e77037591c75930c91e83'),
    'foveabox/fovea_r101_fpn_gn-head-align_ms-640-800-4xb4-2x_coco.py': (664, '8bab122494749b4f4b3e77037591c75930c91e83'),
    'foveabox/fovea_r50_fpn_4xb4-1x_coco.py': (354, '288c3cddf248316ff7e20d31bb6e541abbef2e74'),
    'foveabox/fovea_r50_fpn_4xb4-2x_coco.py': (354, '288c3cddf248316ff7e20d31bb6e541abbef2e74'),
    'foveabox/fovea_r50_fpn_gn-head-align_4xb4-2x_coco.py': (358, '48a63b5359b79ec78cec0e4a19d00fc368c99054'),
    'foveabox/fovea_r50_fpn_gn-head-align_ms-640-800-4xb4-2x_coco.py': (358, '48a63b5359b79ec78cec0e4a19d00fc368c99054'),
}


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the pretrained weights would need a download
    return cfg


def build_on_meta(path):
    """The config's model with parameters on the 'meta' device: keys and shapes, no memory."""
    with torch.device('meta'):
        return MODELS.build(load(path).model)


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_mmdet_config_builds_mmdets_state_dict(path):
    assert state_dict_signature(build_on_meta(MMDET_CONFIGS / path)) == MMDET_SIGNATURES[path]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_detlab_config_is_mmdets_and_builds_the_same(path):
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()
    assert state_dict_signature(build_on_meta(REPO_ROOT / 'configs' / path)) == \
        MMDET_SIGNATURES[path]


def remote_backbone_checkpoints():
    """(config, checkpoint) for every config whose backbone starts from remote weights."""
    pairs = []
    for path in sorted(MMDET_SIGNATURES):
        init_cfg = Config.fromfile(str(MMDET_CONFIGS / path)).model.backbone.get('init_cfg')
        checkpoint = (init_cfg or {}).get('checkpoint', '')
        if checkpoint.startswith(REMOTE_PREFIXES):
            pairs.append((path, checkpoint))
    return pairs


REMOTE = remote_backbone_checkpoints()


def test_most_configs_start_from_remote_backbone_weights():
    # The rest train from scratch or start from a local self-supervised checkpoint.
    local_or_none = set(MMDET_SIGNATURES) - {path for path, _ in REMOTE}
    assert local_or_none == {path for path in MMDET_SIGNATURES
                             if path.startswith(('strong_baselines/', 'simple_copy_paste/'))} | {
        'scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
        'scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
        'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_1x_coco.py',
        'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_ms-2x_coco.py',
        'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_1x_coco.py',
        'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_ms-2x_coco.py'}


@pytest.mark.parametrize('path,checkpoint', REMOTE)
def test_pretrained_backbone_names_resolve_offline_with_a_clear_error(
        path, checkpoint, monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # an empty hub cache
    with pytest.raises(RuntimeError) as error:
        resolve_checkpoint(checkpoint)
    message = str(error.value)
    assert checkpoint in message and 'https://' in message and str(tmp_path) in message


#: MMDetection's dataset-and-schedule configs (no model) that recipes inherit.
DATA_ONLY = ['common/lsj-200e_coco-instance.py', 'common/ms-90k_coco.py',
             'common/ms-poly-90k_coco-instance.py', 'common/ssj_270k_coco-instance.py']


def pipelines(node):
    """Every ``pipeline`` list inside a (nested) dataset config."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'pipeline':
                yield value
            else:
                yield from pipelines(value)


@pytest.mark.parametrize('path', DATA_ONLY)
def test_data_only_configs_are_mmdets_and_their_pipelines_build(path):
    from detlab.registry import TRANSFORMS
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / path))
    adopt_default_scope(cfg)
    found = list(pipelines(cfg.train_dataloader.dataset)) + \
        list(pipelines(cfg.test_dataloader.dataset))
    assert len(found) >= 2
    for pipeline in found:
        assert [type(TRANSFORMS.build(step)).__name__ for step in pipeline] == \
            [step['type'] for step in pipeline]
