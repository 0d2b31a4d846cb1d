"""The HTTP shell: FastAPI routes over the CreditLedger, problem+json errors, auth, observability.

Build the app with ``creditledger.infrastructure.http.app.create_app``; nothing here does work at
import.
"""
