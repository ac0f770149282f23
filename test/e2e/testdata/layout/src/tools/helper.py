def tag(x):
    return x + " via helper"
