"""Shared code of the WhatsApp AI assistant: queue records, domain logic and adapters.

Built by SAM as the functions' layer; each function holds only its handler. Where things are:

- `records`: the versioned records on the two FIFO queues (the contracts between functions);
- `webhook/`: Meta's webhook in: body, signature, subscription handshake, payload models, digest, report;
- `whatsapp/`: the WhatsApp Cloud API out: Graph client and errors, delivery, text splitting;
- `model/`: the model API (Mistral or any chat-completions server);
- `conversation/`: prompt, memory, answering;
- `aws/`: SQS queue and FIFO batch processing, Secrets Manager;
- `observability`, `retry_after`: shared by all of the above.
"""
