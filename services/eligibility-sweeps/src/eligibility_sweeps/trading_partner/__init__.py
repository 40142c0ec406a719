"""Trading partners: where each payer's 270s go, with what credentials and limits."""
