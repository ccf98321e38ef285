"""Stop strings over streamed text: a stop string may arrive split across tokens, so the
text that could be its beginning is held back until the next piece decides it."""


class StopScanner:
    def __init__(self, stops):
        self._stops = [s for s in (stops or []) if s]
        self._held = ""

    def feed(self, text):
        """Returns (text safe to emit, whether a stop string ended the reply)."""
        if not self._stops:
            return text, False
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self._held = ""
            return buffer[: min(hits)], True
        keep = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:n]):
                    keep = n
                    break
        self._held = buffer[len(buffer) - keep :]
        return buffer[: len(buffer) - keep], False

    def flush(self):
        held, self._held = self._held, ""
        return held
