"""The HTTP side of posttrain (``posttrain serve``): the FastAPI app and its routers.

Interface for other routers (the capture proxy, the OTLP receiver):

* :func:`posttrain.serve.app.create_app` ``(settings) -> FastAPI``; routers plug in at
  :func:`posttrain.serve.app.extra_routers`.
* :func:`posttrain.serve.app.require_role` ``("writer")``: a dependency returning the
  caller's :class:`~posttrain.platform.access.Principal` (``.workspace``, ``.role``).
* ``request.app.state.service``: the :class:`~posttrain.platform.capture.service.CaptureService`;
  ``await service.accept(principal.workspace, events)`` → one
  :class:`~posttrain.platform.capture.events.EventAck` per event;
  ``service.record_capture_failure(reason)`` counts a capture that failed.
"""
