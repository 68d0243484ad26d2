"""The dearpygui desktop app. Plain state (`state`, `paths`, `settings`, `training_session`) and pure
picture logic (`viewport`, `video`) import no GUI; `app`, `layout`, `keys` and `panel_*` hold the widgets."""
