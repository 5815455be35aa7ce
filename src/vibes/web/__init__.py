"""vibes on the web: the search API (:mod:`vibes.web.api`), the pages and the Datasette
plugin that serve it (:mod:`vibes.web.plugin`), and ``vibes serve``'s server
(:mod:`vibes.web.serve`). Nothing here is imported by the command line until a web
command runs."""
