"""Remote monitoring of a running pipeline: a page and endpoints over HTTP, and events to MQTT.

A Jetson watching a room has no screen, so `edgefer run --serve [HOST:]PORT` serves the annotated
video (MJPEG), the per-face rows, the statistics and Prometheus metrics, and `--events mqtt://...`
publishes the rows (or only the changes of each track) to a broker. See docs/remote.md.

The rooms, from the top (import-linter checks the order):

| module | its one job |
|---|---|
| `session` | `RemoteSession`: builds the server and the publisher from `PipelineSettings`, feeds them |
| `server`, `mqtt` | the HTTP server (`ThreadingHTTPServer`, bounded, token); the MQTT publisher (paho) |
| `hub`, `metrics`, `page` | newest frame -> JPEG and latest rows for the clients; Prometheus text; the HTML page |
| `address` | parsing `[HOST:]PORT` and `mqtt://` URLs (pure; the settings validate with it) |

This package imports nothing at its top, so `edgefer.pipeline.settings` can use `address` alone.
"""
