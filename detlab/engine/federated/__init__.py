"""Federated training: FedAvg/FedProx over clients that never share their images."""
from .aggregate import WeightAverager
from .clients import Client, build_clients, client_datasets, owner_rank
from .loop import FedAvgTrainLoop, derived_seed

__all__ = ['WeightAverager', 'Client', 'build_clients', 'client_datasets', 'owner_rank',
           'FedAvgTrainLoop', 'derived_seed']
