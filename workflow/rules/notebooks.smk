# Generic notebook rules, included last: by then every stage has registered its figures and tables,
# so each rule's {name} is constrained to its own registry.


# papermill writes the executed notebook into the log folder first: Snakemake deletes a failed
# job's outputs, and the partially executed copy is what shows the failing cell. On failure,
# `staircase notebook-failure` names that cell (In [n]), the error, and where the copy is.
# The static HTML copy (readable without Jupyter) is made in the same job: a job of its own per
# notebook cost a Snakemake job and a process start-up each (PERFORMANCE.md, "The default run").
PAPERMILL = (
    "papermill {input.notebook} {log.notebook} -k python3 --cwd . -y {params.parameters:q}"
    " > {log.stderr} 2>&1 || {{ python -m staircase notebook-failure {log.notebook} {log.stderr} >&2;"
    " exit 1; }}; cp {log.notebook} {output.notebook}"
    " && jupyter nbconvert --to html {output.notebook} --output-dir {params.folder:q} >> {log.stderr} 2>&1"
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
        html=res("notebooks/{name}.html"),
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
        folder=lambda w, output: os.path.dirname(output.html),
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
        html=res("notebooks/{name}.html"),
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
        folder=lambda w, output: os.path.dirname(output.html),
    shell:
        PAPERMILL


TARGETS.extend(job_outputs(rules.figure, name=list(FIGURES)))
TARGETS.extend(job_outputs(rules.table, name=list(TABLES)))
