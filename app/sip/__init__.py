"""SIP signalling: messages, SDP, transactions, dialogs, transport, UAS/UAC, trunks."""
