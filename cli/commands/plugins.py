"""``kzoo plugins``: distributions that provide models or datasets, and whether they work."""

import click

from kzoo_cli._common import console, json_option, print_json


@click.command("plugins")
@json_option
@click.option("--strict", is_flag=True, help="Exit 2 if any plugin is broken (also KZOO_STRICT_PLUGINS=1).")
def plugins_command(as_json, strict):
    """List every distribution that registers kzoo models or datasets, with its status.

    \b
    Examples:
      kzoo plugins
      kzoo plugins --json
    """
    from kzoo.errors import PluginError
    from kzoo.plugins import plugin_report
    from kzoo.registry import strict_plugins

    report = plugin_report()
    if as_json:
        print_json(report)
    else:
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("distribution", "version", "status", "models", "datasets"):
            table.add_column(column)
        for row in report["distributions"]:
            status = "[green]ok[/green]" if row["status"] == "ok" else f"[red]broken[/red] ({'; '.join(row['errors'])})"
            table.add_row(row["distribution"] + (" (built-in)" if row["builtin"] else ""), row["version"], status,
                          ", ".join(row["models"]), ", ".join(row["datasets"]))
        out = console()
        out.print(table)
        for clash in report["clashes"]:
            out.print(f"[yellow]name clash[/yellow]: {clash['kind']} {clash['name']!r} is registered by "
                      f"{' and '.join(clash['distributions'])}; use {', '.join(clash['qualified_names'])}.")
        if report["plugins_disabled"]:
            out.print("[dim]Third-party plugins are disabled (KZOO_DISABLE_PLUGINS=1).[/dim]")
    broken = [r["distribution"] for r in report["distributions"] if r["status"] == "broken"]
    if broken and (strict or strict_plugins()):
        raise PluginError(f"Broken plugin distributions: {', '.join(broken)}.")
