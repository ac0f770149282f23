BASE = "shared"
