"""The app's routes, one ``APIRouter`` per group of pages. Each reaches the app's state through
``digest.web.deps`` and none imports another; ``digest.web.app`` includes them all."""
