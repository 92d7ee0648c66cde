"""The ``kzoo`` command group: command lookup with "did you mean", and clean errors for user mistakes."""

import difflib
import importlib
import sys

import click

from kzoo.errors import KzooError

# command name -> module under kzoo_cli.commands (imported when the command runs, so --help stays fast)
COMMANDS = {
    "list": "list",
    "info": "info",
    "summary": "summary",
    "build": "build",
    "train": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "explain": "explain",
    "generate": "generate",
    "datasets": "datasets",
    "plugins": "plugins",
    "export": "export",
    "bench": "bench",
    "runs": "runs",
}

HELP = """kzoo: the classic CNNs and RNNs in Keras 3, on torch, TensorFlow or JAX.

\b
Examples:
  kzoo list 'resnet*'
  kzoo info lenet5
  kzoo summary alexnet --input-shape 227,227,3
  kzoo train lenet5 --epochs 2
  kzoo evaluate runs/lenet5-mnist_embedded-1
  kzoo runs
  kzoo bench lenet5
"""


class UserError(click.ClickException):
    """A :class:`KzooError` shown as ``Error: <message>`` with exit status 2, no traceback."""

    exit_code = 2


class KzooGroup(click.Group):
    """Lazy commands, close-match suggestions, and KzooError -> exit 2."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        module = COMMANDS.get(name)
        if module is None:
            return None
        module_name = f"kzoo_cli.commands.{module}"
        try:
            mod = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a module the command needs is missing: say so, not "No such command"
                raise
            return None
        return getattr(mod, f"{name}_command", None)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KzooError as exc:
            error = UserError(str(exc))
            error.exit_code = exc.exit_code  # 2 for a mistake; 3 for a diverged run
            raise error from None
        except BrokenPipeError:  # `kzoo list | head`: the reader has gone; Click's main exits 1 quietly
            raise
        except OSError as exc:  # a path that cannot be read or written (missing folder, /proc, read-only, full disk)
            where = f": {exc.filename}" if exc.filename else ""
            raise UserError(f"{exc.strerror or exc}{where}") from None


@click.group(cls=KzooGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="kzoo", prog_name="kzoo")  # the installed distribution
def cli():
    pass


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="kzoo")


if __name__ == "__main__":
    sys.exit(main())
