"""``basin train``: one training run from the command line (no Ray, no database).

Its options' choices and defaults are the trainers' own (torch code): they are added when ``basin train``
is parsed or its help is shown, so listing the commands (``basin --help``) imports no torch.
"""

from __future__ import annotations

import argparse
import json
import sys

from storage.cli_kit import EXIT_OK, add_later, fail

SCHEDULE_OPTIONS = ("t0", "t_mult", "eta_min", "milestones", "factor")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one configuration and print per-epoch results",
        description="Train one configuration. With --json, stdout holds one JSON object per epoch and nothing else.",
    )
    p.set_defaults(func=run)
    add_later(p, _options)


def _options(p: argparse.ArgumentParser) -> None:
    from trainers import data, models, optim, schedules
    from trainers.run import DEFAULTS

    d = DEFAULTS
    p.add_argument("--dataset", default=d["dataset"],
                   help=f"a registered name ({', '.join(data.DATASETS)}, or an installed package's) or package.module:function")
    p.add_argument("--model", default=d["model"],
                   help=f"a registered name ({', '.join(models.MODELS)}, or an installed package's) or package.module:function")
    p.add_argument("--metric", default=d["metric"],
                   help="error (default), test_loss, or a loss function package.module:function(model, batch) -> per-example losses")
    p.add_argument("--decay", default=d["decay"], choices=optim.DECAYS,
                   help="which parameters decay: all (the paper) or matrices (not biases or norm weights)")
    p.add_argument("--code", default=None, metavar="DIR", help="folder to import your model/data-set code from")
    p.add_argument("--optimizer", default=d["optimizer"], choices=optim.OPTIMIZERS)
    p.add_argument("--lr", type=float, default=d["lr"], help="initial learning rate α")
    p.add_argument("--wd-norm", type=float, default=d["wd_norm"], help="normalised weight decay λ_norm")
    p.add_argument("--schedule", default=d["schedule"], choices=schedules.SCHEDULES)
    p.add_argument("--epochs", type=int, default=d["epochs"], help="budget in epochs")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--device", default=d["device"], help="cpu, cuda, cuda:N or auto")
    p.add_argument("--data-dir", default=d["data_dir"], help="folder holding file-based data sets (cifar*, imagenet32)")
    p.add_argument("--download", action="store_true", help="download cifar10/cifar100 into --data-dir if missing")
    p.add_argument("--momentum", type=float, default=d["momentum"], help="β₁ of SGD/SGDW")
    p.add_argument("--momentum-form", default=d["momentum_form"], choices=optim.MOMENTUM_FORMS)
    p.add_argument("--t0", type=float, default=None, help="warm restarts: first period T_0 in epochs")
    p.add_argument("--t-mult", type=float, default=None, help="warm restarts: period multiplier T_mult")
    p.add_argument("--eta-min", type=float, default=None, help="cosine / warm restarts: η_min")
    p.add_argument("--milestones", type=float, nargs="+", default=None, help="step-drop: epochs of the drops")
    p.add_argument("--factor", type=float, default=None, help="step-drop: multiplier at each drop")
    p.add_argument("--validation", type=float, default=d["validation"],
                   help="fraction of the training set held out as a validation split (default 0: none)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA only)")
    p.add_argument("--json", action="store_true", help="print one JSON object per epoch on stdout, nothing else")


def schedule_params(args: argparse.Namespace) -> dict:
    """The schedule options given on the command line (the schedule's own defaults fill the rest)."""
    return {key: getattr(args, key) for key in SCHEDULE_OPTIONS if getattr(args, key) is not None}


def run(args: argparse.Namespace) -> int:
    from trainers import check, data, registry
    from trainers.run import RunConfig, resolve_device, train

    prog = "basin train"
    try:
        config = RunConfig(
            dataset=args.dataset, model=args.model, optimizer=args.optimizer, lr=args.lr, wd_norm=args.wd_norm,
            schedule=args.schedule, schedule_params=schedule_params(args), epochs=args.epochs,
            batch_size=args.batch_size, seed=args.seed, device=args.device, data_dir=args.data_dir,
            download=args.download, momentum=args.momentum, momentum_form=args.momentum_form, compile=args.compile,
            validation=args.validation, metric=args.metric, decay=args.decay,
        )
        resolve_device(config.device)  # a device this machine lacks: one line now, not a traceback mid-run
        if args.code is not None:
            registry.add_code(args.code, "--code")
        if not check.builtin(config):  # the user's code: imports, loads, one forward/backward pass first
            check.check_run(config)
    except ValueError as exc:
        return fail(prog, f"error: {exc}")
    from tqdm import tqdm

    bar = tqdm(total=config.epochs, unit="epoch", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)
    try:
        for result in train(config):
            if args.json:
                print(json.dumps(result.to_json()), flush=True)
            else:
                line = f"epoch {result.epoch:>3}  train loss {result.train_loss:.4f}"
                if result.test_error is not None:
                    line += f"  train err {result.train_error:.4f}  test err {result.test_error:.4f}"
                if config.metric != "error":
                    se = f" ± {result.test_se:.4f}" if result.test_se is not None else ""
                    line += f"  test loss {result.test_loss:.4f}{se}"
                line += (
                    (f"  val err {result.val_error:.4f}" if result.val_error is not None else "")
                    + f"  η {result.eta:.4f}  λ {result.wd:.3g}  {result.seconds:.1f}s"
                    + ("  DIVERGED" if result.diverged else "")
                    + ("  (end of period: recommended)" if result.period_end else "")
                )
                (bar.write if not bar.disable else print)(line)
                bar.update(1)
    except data.DataError as exc:
        return fail(prog, f"error: {exc}")
    finally:
        bar.close()
    return EXIT_OK
