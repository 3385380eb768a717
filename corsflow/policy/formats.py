"""The ``corsflow policy --format`` names, apart from the renderers so that building the
command line does not import them."""

CONFIG_FORMATS = ("nginx", "apache", "caddy", "express", "fastapi", "flask", "django",
                  "spring")
FORMATS = ("text", "json", *CONFIG_FORMATS)
