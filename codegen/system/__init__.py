"""The system description: who sends what where (flows), the AsyncAPI document
with the messages' JSON Schemas, and the Mermaid service map (``toolkit docs``)."""
