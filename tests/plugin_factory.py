"""Throwaway plugin distributions for tests: a real ``.dist-info`` on a temporary ``sys.path`` entry."""

import textwrap


def make_distribution(root, name, *, models=None, datasets=None, layers=None, modules=None, version="1.0"):
    """Write an installed-looking distribution under ``root``.

    Args:
        models/datasets/layers: ``{entry name: "module:attr"}`` for the kzoo.models / kzoo.datasets /
            kzoo.layers groups.
        modules: ``{"module_name": "source"}`` written next to the dist-info.
    """
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sections = []
    for group, entries in (("kzoo.models", models), ("kzoo.datasets", datasets), ("kzoo.layers", layers)):
        if entries:
            sections.append(f"[{group}]\n" + "\n".join(f"{k} = {v}" for k, v in entries.items()))
    (dist_info / "entry_points.txt").write_text("\n\n".join(sections) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    return dist_info
