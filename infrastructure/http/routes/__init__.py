"""One router per resource; ``creditledger.infrastructure.http.app`` mounts them all."""
