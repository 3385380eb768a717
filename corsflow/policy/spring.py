"""Spring (Web MVC or WebFlux): a ``CorsConfigurationSource`` bean with one
``CorsConfiguration`` per path rule, registered most specific first.

Untested: no Maven repository is reachable where corsflow's tests run, so the generated
code is never compiled or run against a real Spring application here.
"""

from __future__ import annotations

import json

from .common import header_comment
from .model import Policy, ServerPolicy

TESTED = None
DEVIATIONS: dict[str, str] = {
    "headers-missing": "Spring answers a preflight with only the requested headers it allows "
                       "(and only the requested method when allowing all), so a cached "
                       "preflight covers only those.",
}
UNTESTED_WHY = ("UNTESTED: no Maven repository is reachable where corsflow's tests run; "
                "compile it and replay the capture against your application before relying "
                "on it.")


def deviations(server: ServerPolicy) -> dict[str, str]:
    """The known ways this configuration departs from answer() (Mismatch kinds)."""
    return dict(DEVIATIONS)


def _java_list(items: tuple[str, ...] | None) -> str:
    return "List.of(" + ", ".join(json.dumps(i) for i in items or ()) + ")"


def _ant(template: str) -> str:
    """A Spring path pattern: ``{id}`` segments become ``*`` (one segment)."""
    return "/".join("*" if seg.startswith("{") else seg for seg in template.split("/"))


def _config(name: str, p: Policy) -> list[str]:
    lines = [f"        CorsConfiguration {name} = new CorsConfiguration();"]
    if p.allow_origins == ("*",):
        lines.append(f'        {name}.addAllowedOrigin("*");')
    else:
        lines.append(f"        {name}.setAllowedOrigins({_java_list(p.allow_origins)});")
    lines += [
        f"        {name}.setAllowedMethods({_java_list(p.allow_methods)});",
        f"        {name}.setAllowedHeaders({_java_list(p.allow_headers)});",
        f"        {name}.setExposedHeaders({_java_list(p.expose_headers)});",
        f"        {name}.setAllowCredentials({str(bool(p.allow_credentials)).lower()});",
    ]
    if p.max_age is not None:
        lines.append(f"        {name}.setMaxAge({p.max_age}L);")
    if p.allow_private_network:
        lines.append(f"        {name}.setAllowPrivateNetwork(true);")
    return lines


def generate(server: ServerPolicy) -> str:
    lines = [
        f"// {UNTESTED_WHY}",
        "import java.util.List;",
        "import org.springframework.context.annotation.Bean;",
        "import org.springframework.context.annotation.Configuration;",
        "import org.springframework.web.cors.CorsConfiguration;",
        "import org.springframework.web.cors.CorsConfigurationSource;",
        "import org.springframework.web.cors.UrlBasedCorsConfigurationSource;",
        "",
        "@Configuration",
        "public class CorsPolicy {",
        "    @Bean",
        "    public CorsConfigurationSource corsConfigurationSource() {",
        "        UrlBasedCorsConfigurationSource source = new UrlBasedCorsConfigurationSource();",
    ]
    for i, rule in enumerate(server.proposed.paths):
        lines += _config(f"rule{i}", rule.policy)
        lines.append(f"        source.registerCorsConfiguration({json.dumps(_ant(rule.path))}, "
                     f"rule{i});")
    lines += _config("fallback", server.proposed.default)
    lines += ['        source.registerCorsConfiguration("/**", fallback);',
              "        return source;", "    }", "}"]
    return header_comment(server, "Spring (CorsConfigurationSource)", "//", TESTED,
                          deviations(server)) + "\n".join(lines) + "\n"
