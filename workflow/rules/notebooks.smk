# Generic notebook rules, included last: by then every stage has registered its figures and tables,
# so each rule's {name} is constrained to its own registry.


# papermill writes the executed notebook into the log folder first: Snakemake deletes a failed
# job's outputs, and the partially executed copy is what shows the failing cell. On failure,
# `staircase notebook-failure` names that cell (In [n]), the error, and where the copy is.
PAPERMILL = (
    "papermill {input.notebook} {log.notebook} -k python3 --cwd . -y {params.parameters:q}"
    " > {log.stderr} 2>&1 || {{ python -m staircase notebook-failure {log.notebook} {log.stderr} >&2;"
    " exit 1; }}; cp {log.notebook} {output.notebook}"
)


rule figure:
    """Run a figure's papermill notebook: PNG and PDF from the tidy results."""
    input:
        notebook=lambda w: FIGURES[w.name]["notebook"],
        data=lambda w: FIGURES[w.name]["inputs"],
    output:
        png=report(
            "results/figures/{name}.png",
            caption="../report/caption.rst",
            category="Figures",
        ),
        pdf="results/figures/{name}.pdf",
        notebook="results/notebooks/{name}.ipynb",
    log:
        notebook="results/logs/notebooks/{name}.ipynb",
        stderr="results/logs/notebooks/{name}.log",
    wildcard_constraints:
        name=_one_of(FIGURES),
    conda:
        ENV
    params:
        parameters=lambda w: json.dumps(FIGURES[w.name]["parameters"]),
        caption=lambda w: FIGURES[w.name]["caption"],
    shell:
        PAPERMILL


rule table:
    """Run a table's papermill notebook: CSV, and a rendering as PNG and PDF."""
    input:
        notebook=lambda w: TABLES[w.name]["notebook"],
        data=lambda w: TABLES[w.name]["inputs"],
    output:
        csv=report(
            "results/tables/{name}.csv",
            caption="../report/caption.rst",
            category="Tables",
        ),
        png="results/tables/{name}.png",
        pdf="results/tables/{name}.pdf",
        notebook="results/notebooks/{name}.ipynb",
    log:
        notebook="results/logs/notebooks/{name}.ipynb",
        stderr="results/logs/notebooks/{name}.log",
    wildcard_constraints:
        name=_one_of(TABLES),
    conda:
        ENV
    params:
        parameters=lambda w: json.dumps(TABLES[w.name]["parameters"]),
        caption=lambda w: TABLES[w.name]["caption"],
    shell:
        PAPERMILL


rule notebook_html:
    """A static HTML copy of an executed notebook, readable without Jupyter."""
    input:
        "results/notebooks/{name}.ipynb",
    output:
        "results/notebooks/{name}.html",
    log:
        "results/logs/notebooks/{name}.html.log",
    wildcard_constraints:
        name=_one_of([*FIGURES, *TABLES]),
    conda:
        ENV
    shell:
        "jupyter nbconvert --to html {input} --output-dir results/notebooks > {log} 2>&1"


TARGETS.extend(job_outputs(rules.figure, name=list(FIGURES)))
TARGETS.extend(job_outputs(rules.table, name=list(TABLES)))
TARGETS.extend(job_outputs(rules.notebook_html, name=[*FIGURES, *TABLES]))
