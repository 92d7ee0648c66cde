"""``kzoo plugins``: distributions that provide models, datasets or layers, and whether they work."""

import click

from kzoo_cli._common import console, json_option, print_json


@click.command("plugins")
@json_option
@click.option("--strict", is_flag=True, help="Exit 2 if any plugin is broken (also KZOO_STRICT_PLUGINS=1).")
@click.option("--check", is_flag=True,
              help="Also import every plugin's modules (each distribution in its own process) and report failures.")
def plugins_command(as_json, strict, check):
    """List every distribution that registers kzoo models, datasets or layers, with its status.

    Without --check nothing is imported: a plugin is broken when its metadata cannot be read (module source
    missing, MODEL_CARD/SPECS not plain literals). --check also imports each plugin, so import errors show.

    \b
    Examples:
      kzoo plugins
      kzoo plugins --json
      kzoo plugins --check --strict
    """
    from kzoo.errors import PluginError
    from kzoo.plugins import plugin_report
    from kzoo.registry import strict_plugins

    report = plugin_report(check=check)
    if as_json:
        print_json(report)
    else:
        from rich.markup import escape
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("distribution", "version", "status", "models", "datasets"):
            table.add_column(column)
        for row in report["distributions"]:
            status = "[green]ok[/green]" if row["status"] == "ok" else f"[red]broken[/red]: {escape(row['error'])}"
            table.add_row(row["distribution"] + (" (built-in)" if row["builtin"] else ""), row["version"], status,
                          ", ".join(row["models"]), ", ".join(row["datasets"]))
        out = console()
        out.print(table)
        for clash in report["clashes"]:
            keeper = clash["plain_name_goes_to"]
            plain = f"{clash['name']!r} is {keeper}'s" if keeper else f"{clash['name']!r} is ambiguous"
            out.print(f"[yellow]name clash[/yellow]: {clash['kind']} {clash['name']!r} is registered by "
                      f"{' and '.join(clash['distributions'])}; {plain}, use "
                      f"{', '.join(clash['qualified_names'])}.", highlight=False)
        if report["plugins_disabled"]:
            out.print("[dim]Third-party plugins are disabled (KZOO_DISABLE_PLUGINS=1).[/dim]")
        elif not check:
            out.print("[dim]Nothing was imported; `kzoo plugins --check` also imports each plugin.[/dim]")
    broken = [f"{r['distribution']} ({r['error']})" for r in report["distributions"] if r["status"] == "broken"]
    if broken and (strict or strict_plugins()):
        raise PluginError(f"Broken plugin distributions: {'; '.join(broken)}.")
