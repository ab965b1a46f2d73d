//! Telegram Bot API simulator (in progress).
