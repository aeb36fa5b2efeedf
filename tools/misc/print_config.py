"""Print a config with its whole ``_base_`` chain merged: ``print_config.py CONFIG``."""
import argparse

from detlab.utils import CfgOptionsAction, read_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the fully merged config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = read_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')


if __name__ == '__main__':
    main()
