# Federated quickstart: the quickstart RetinaNet trained by FedAvg over 4
# clients that never share their images:
#   python tools/train.py configs/quickstart/retinanet_r18_fpn_shapes_fedavg.py
# The shapes training set is split among the clients by class with a
# Dirichlet(0.5) draw (non-IID: each client sees mostly one or two of the
# three shapes). Every round each client trains the global model for 4
# iterations of 8 images and the server averages the 4 results, weighted by
# the clients' image counts. 100 rounds x 4 clients x 4 iterations x 8 images
# = 12800 images, as many as the centralised quickstart's 1600 x 8.
_base_ = './retinanet_r18_fpn_shapes.py'

rounds = 100
train_cfg = dict(
    _delete_=True,
    type='FedAvgTrainLoop',
    rounds=rounds,
    local_iters=4,
    clients_per_round=1.0,
    partition=dict(type='dirichlet', num_clients=4, alpha=0.5),
    # Every client takes part in every round, so its own AdamW moments are one
    # round old, not stale: keep them (fresh moments would restart Adam's bias
    # correction, i.e. sign-like steps, every 4 iterations).
    client_optim_state='keep',
    mu=0.0,
    nonfinite='drop',
    val_interval=rounds)

# Client loaders run the pipeline in the main process: a worker per client
# would restart every round (workers are reseeded per round for exact resume).
train_dataloader = dict(num_workers=0, persistent_workers=False)

# Schedules count rounds (one round is one iteration of the run).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=6),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=6, end=rounds, eta_min=2e-5)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10, max_keep_ckpts=3))
