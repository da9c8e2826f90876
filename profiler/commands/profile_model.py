"""``profile-encoder profile``: the per-module cost table of one model."""
from __future__ import annotations

from ..errors import UsageError
from ..option_values import COMPUTE_DEVICES
from ..reference import PAPER_SECONDS
from .arguments import (
    add_deprecated_alias,
    add_device_option,
    add_mode_option,
    add_output_option,
    add_roofline_options,
    add_seconds_option,
    add_set_option,
    check_output,
    non_negative_int,
    parse_set,
    positive_int,
    write_output,
)

# The rate of a --seconds waveform: the zoo's (a test keeps it equal to
# models.constants.SAMPLE_RATE). Not imported from there: profiling a user's file must not
# import the zoo package, whose name would shadow a user package also named ``models``.
DEFAULT_SAMPLE_RATE = 16_000
FORMATS = ("text", "json", "csv")
# meta first: counting needs no memory and no compute.
DEVICES = ("meta",) + COMPUTE_DEVICES


def add_parser(sub) -> None:
    p = sub.add_parser(
        "profile", help="per-module costs of one model",
        description="Count storage, MACs, FLOPs and BOPs of one model, module by module. "
                    "The model is a zoo name (see `profile-encoder table --help`), "
                    "path/to/file.py:factory or package.module:factory (a callable returning "
                    "an nn.Module), or hf:NAME (hubert, wav2vec2, wavlm, data2vec-audio, "
                    "whisper: transformers' default config, whisper's encoder) or "
                    "hf:path/config.json, built offline with random weights. Runs on meta "
                    "tensors unless --device says otherwise.",
    )
    p.add_argument("--model", required=True,
                   help="zoo name, file.py:factory, module:factory, hf:NAME or "
                        "hf:path/config.json (required)")
    add_set_option(p, "override a zoo config field (layers=4, frontend=wav2vec2, "
                      "attention=blocked...) or pass a keyword to the factory (default: none)")
    add_seconds_option(p, "profile on a waveform of this many seconds (default "
                          f"{PAPER_SECONDS:g} for zoo models, none for others)")
    p.add_argument("--sample-rate", type=positive_int, default=DEFAULT_SAMPLE_RATE,
                   help="samples per second of the --seconds waveform "
                        f"(default {DEFAULT_SAMPLE_RATE}, the zoo's)")
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="waveforms in the --seconds batch (default 1)")
    add_deprecated_alias(p, "--batch", "--batch-size", dest="batch_size", type=positive_int)
    p.add_argument("--input-shape", action="append", metavar="SHAPE",
                   help="shape of one positional input tensor, e.g. 1x160000 or 2,100,80; "
                        "repeat for several inputs (overrides --seconds; default: one "
                        "waveform of --seconds)")
    p.add_argument("--input-dtype", default="float32",
                   help="dtype of the inputs (default float32)")
    p.add_argument("--depth", type=non_negative_int, default=2,
                   help="module depth of the table; deeper modules fold into their ancestor "
                        "(default 2)")
    add_device_option(p, "meta", "meta: no memory, no compute", kinds=DEVICES)
    p.add_argument("--train-mode", action="store_true",
                   help="profile in train() mode (default: off, eval() mode: inference)")
    add_mode_option(p, "one forward", "one training step, the forward, the backward and "
                    "AdamW's update, in train() mode, with peak memory")
    add_roofline_options(p)
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (the per-module table and a summary), json (the whole profile) "
                        "or csv (the per-module table) (default text)")
    add_output_option(p, "the result")
    p.add_argument("--crosscheck", action="store_true",
                   help="also run the installed peers (DeepSpeed, fvcore, ptflops, "
                        "FlopCounterMode, calflops, thop) on CPU and compare their MACs with "
                        "ours (default: off)")
    p.set_defaults(run=run)


def parse_shape(text: str) -> tuple[int, ...]:
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts if p.strip())
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected integers like 1x160000") from None
    if not shape or any(d < 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: expected non-negative integers like 1x160000")
    return shape


def make_inputs(args, zoo: bool, hf_shape=None) -> tuple:
    """The positional inputs: --input-shape, else a --seconds waveform (batch, samples), or
    ``hf_shape(batch, samples)`` for a transformers model (whisper: its log-mel frames)."""
    import torch

    try:
        dtype = getattr(torch, args.input_dtype)
        if not isinstance(dtype, torch.dtype):
            raise AttributeError
    except AttributeError:
        raise UsageError(f"--input-dtype {args.input_dtype!r} is not a torch dtype") from None
    if args.input_shape:
        shapes = [parse_shape(s) for s in args.input_shape]
    elif args.seconds is not None or zoo or hf_shape is not None:
        seconds = args.seconds if args.seconds is not None else PAPER_SECONDS
        samples = int(round(seconds * args.sample_rate))
        if samples < 1:
            raise UsageError(f"--seconds {seconds} gives no samples at {args.sample_rate} Hz")
        shapes = [hf_shape(args.batch_size, samples) if hf_shape is not None
                  else (args.batch_size, samples)]
    else:
        raise UsageError("give the input: --input-shape SHAPE (repeatable) or --seconds S")
    # Real CPU tensors only when something will really run on them.
    device = "meta" if args.device == "meta" and not args.crosscheck else "cpu"
    if dtype.is_floating_point:
        return tuple(torch.randn(s, dtype=dtype, device=device) for s in shapes)
    return tuple(torch.zeros(s, dtype=dtype, device=device) for s in shapes)


def run(args) -> int:
    import torch

    from .. import display
    from ..analyzer import profile
    from ..catalog import load_catalog
    from .loading import is_hf_model, is_zoo_model, load_hf_model, load_model, user_folder_on_path

    check_output(args.output)
    catalog = load_catalog(args.catalog)   # a bad one fails here, before any work
    device = torch.device(args.device)   # checked when parsed
    zoo = is_zoo_model(args.model)
    # Zoo and hf models are built straight on the meta device when nothing real has to run.
    overrides = parse_set(args.set)
    on_meta = device.type == "meta" and not args.crosscheck
    hf = (load_hf_model(args.model, overrides, "meta" if on_meta else "cpu")
          if is_hf_model(args.model) else None)
    inputs = make_inputs(args, zoo, hf.input_shape if hf is not None else None)
    if zoo and on_meta:
        overrides["device"] = "meta"
    with user_folder_on_path(args.model):
        model = hf.module if hf is not None else load_model(args.model, **overrides)
        model.train(args.train_mode or args.mode == "train")
        prof = profile(model, inputs, device=device, mode=args.mode)
        check = None
        if args.crosscheck:
            from ..peers import crosscheck

            check = crosscheck(model, inputs)

    if args.format == "json":
        text = prof.to_json(indent=2) + "\n"
    elif args.format == "csv":
        text = prof.to_csv(depth=args.depth)
    elif args.mode == "train":
        shapes = ", ".join("x".join(map(str, t.shape)) for t in inputs)
        text = (f"{args.model} on input {shapes} ({prof.info['device']}): one training step\n\n"
                + display.training_table(prof, depth=args.depth) + "\n\n"
                + display.summary(prof) + "\n" + display.training_summary(prof) + "\n")
    else:
        shapes = ", ".join("x".join(map(str, t.shape)) for t in inputs)
        from ..estimator import describe_estimate, times_by_row
        from ..option_values import ROOFLINE_ESTIMATE

        times = times_by_row(prof, catalog, args.depth, deployed=args.estimate == ROOFLINE_ESTIMATE)
        text = (f"{args.model} on input {shapes} ({prof.info['device']}, "
                f"{'train' if args.train_mode else 'eval'} mode)\n\n"
                + display.module_table(prof, depth=args.depth, times=times) + "\n\n"
                + display.summary(prof) + "\n" + describe_estimate(args.estimate, catalog)
                + "\n")
    if check is not None:
        text += "\ncross-check (MACs, on CPU):\n" + str(check) + "\n"
    write_output(text, args.output)
    return 0
