"""What the Worlds and Rotations tabs share, without GUI calls: a session's background load and a view that renders
the tab's pictures on a `LatestWorker` thread."""

from __future__ import annotations

import torch

from app.gui.workers import LatestWorker, load_in_background


class LoadingSession:
    """A tab session's loading half: loads in the background, the first one when the tab is first shown. A session
    says whether nothing is loaded (`empty()`) and starts its load with `load_async(done)`."""

    def __init__(self):
        self.loading = None
        """While a load runs: what it loads, or how far it got; else None."""
        self.tried_default = False
        self.problem = ""
        """Why the last load failed (shown in the tab while nothing is loaded)."""
        self.version = 0
        """Bumped on every change of what is shown (renders compare it)."""
        self._remembered: dict = {}
        """The last launch's choices that need a load, until the first load applies or drops them."""

    def ensure_loaded(self, done) -> None:
        """The first time the tab is shown, `load_async` what the inputs name; its failure is a warning there (nothing
        shipped yet is no error)."""
        if not self.tried_default and self.empty() and self.loading is None:
            self.tried_default = True
            self.load_async(lambda text, level: done(text, "warn" if level == "error" else level))

    def settled(self, current) -> bool:
        """No load runs or waits to start and, when something is loaded, current() says its pictures are on screen."""
        return self.loading is None and self.tried_default and (self.empty() or current())

    def _in_background(self, thread: str, load, done, loading, what: str, fix: str) -> None:
        """load() on a short thread with `self.loading` set; a failure is said by done(text, "error")."""
        def failed(text: str) -> None:
            self.problem = text
            self._remembered = {}  # they were for what did not load: not tried again next launch
            done(text, "error")

        self.loading = loading
        load_in_background(thread, load, failed, what, fix, lambda: setattr(self, "loading", None))


class TabView:
    """A tab's newest finished pictures, asked for only while the tab is visible and only when what they show changed.
    While that keeps changing (a scrub, a turn, a flight) they come at `quick_res`, small enough to keep up; once it has
    been still for `settle_s`, at the full resolution. A view makes a frame with `render(what, res, snap)`."""

    def __init__(self, thread: str, quick_res: int, settle_s: float):
        self.frame = None
        self.worker = LatestWorker(thread, self._render_one_thread)
        self.quick_res, self.settle_s = quick_res, settle_s
        self._asked = self._seen = None
        self._changed_at = 0.0

    def tick(self, now: float, visible: bool, what, res: int, snapshot) -> bool:
        """Ask for pictures of `what` at `res` (snapshot(): what the render needs, None while nothing is loaded); True
        when a new frame arrived."""
        if what != self._seen:
            self._seen, self._changed_at = what, now
        if now - self._changed_at < self.settle_s:
            res = min(res, self.quick_res)
        if visible and (what, res) != self._asked:
            snap = snapshot()
            if snap is not None:
                self._asked = (what, res)
                self.worker.submit((what, res, snap))
        frame = self.worker.take()
        if frame is not None:
            self.frame = frame
        return frame is not None

    def _render_one_thread(self, request):
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)  # per thread (OpenMP): the machine's other core draws the window
        return self.render(*request)

    def close(self) -> None:
        self.worker.close()
