"""Small widget groups the tabs share: a typed path with its buttons and its file dialog."""

from __future__ import annotations

import dearpygui.dearpygui as dpg

from renderer.errors import RedcubeError

PATH_WIDTH = 210


def path_field(app, tag: str, buttons: list[tuple[str, object]], dialog: str, default: str = "", hint: str = "",
               width: int = PATH_WIDTH) -> None:
    """A path typed by hand beside the file dialog that fills it: `buttons` are (label, fn(path)); Enter in the
    field does the first. The dialog (`...`) puts its choice in the field (and does what it always did)."""
    with dpg.group(horizontal=True):
        dpg.add_input_text(tag=tag, width=width, default_value=default, hint=hint, on_enter=True,
                           callback=app.guard(lambda s, a: buttons[0][1](a)))
        for label, fn in buttons:
            dpg.add_button(label=label, tag=f"{tag}_{label.lower().split()[0]}",
                           callback=app.guard(lambda s, a, u: u(_typed(tag))), user_data=fn)
        dpg.add_button(label="...", callback=lambda: dpg.show_item(dialog))
    app.text_inputs.append(tag)
    app.path_fields[dialog] = tag


def _typed(tag: str) -> str:
    path = dpg.get_value(tag).strip()
    if not path:
        raise RedcubeError("the path field is empty; type a file's path there or pick one with the ... button.")
    return path
