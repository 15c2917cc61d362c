"""Shared code of the WhatsApp AI assistant: models, domain logic and adapters.

Built by SAM as the functions' layer; each function holds only its handler.
"""
