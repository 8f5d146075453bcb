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
            res("figures/{name}.png"),
            caption="../report/caption.rst",
            category="Figures",
        ),
        pdf=res("figures/{name}.pdf"),
        notebook=res("notebooks/{name}.ipynb"),
    log:
        notebook=res("logs/notebooks/{name}.ipynb"),
        stderr=res("logs/notebooks/{name}.log"),
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
            res("tables/{name}.csv"),
            caption="../report/caption.rst",
            category="Tables",
        ),
        png=res("tables/{name}.png"),
        pdf=res("tables/{name}.pdf"),
        notebook=res("notebooks/{name}.ipynb"),
    log:
        notebook=res("logs/notebooks/{name}.ipynb"),
        stderr=res("logs/notebooks/{name}.log"),
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
        res("notebooks/{name}.ipynb"),
    output:
        res("notebooks/{name}.html"),
    log:
        res("logs/notebooks/{name}.html.log"),
    wildcard_constraints:
        name=_one_of([*FIGURES, *TABLES]),
    conda:
        ENV
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    shell:
        "jupyter nbconvert --to html {input} --output-dir {params.folder} > {log} 2>&1"


TARGETS.extend(job_outputs(rules.figure, name=list(FIGURES)))
TARGETS.extend(job_outputs(rules.table, name=list(TABLES)))
TARGETS.extend(job_outputs(rules.notebook_html, name=[*FIGURES, *TABLES]))
