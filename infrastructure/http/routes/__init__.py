"""One router per resource; ``infrastructure.http.app`` mounts them all."""
