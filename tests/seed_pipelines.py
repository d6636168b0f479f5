"""The two examples of the Pipelines seed (GoTaglio's guide), copied as written.

Only the seed's elisions are filled in: the imports, ``self._registry = registry`` and the
class attributes of ``__init__``, and the DAG's functions ``a``..``f`` (which the seed leaves
out; each returns its name around its inputs' results, so the wiring shows in F's result).
Run with ``--pipeline tests.seed_pipelines:SimplePipeline`` (from the repository root).
"""

# ruff: noqa: F541 - the seed's f-string without placeholders is kept as written

from glom import glom

from masksql_pipe.experiment import ExceptionContext, Internal, Pipeline, Prompt, build_template


class SimplePipeline(Pipeline):
    _name = "simple"
    _description = "An example pipeline."

    def __init__(self, registry, replacement_config, flat_config_patch):
        self._registry = registry
        default_config = {
            "prepare": {
                "template": Prompt("Template file for system message"),
                "template_text": Internal(),
            },
            "infer": {
                "model": {
                    "name": Prompt("Model name to use for inference stage"),
                    "settings": {
                        "max_tokens": 800,
                        "temperature": 0.7,
                        "top_p": 0.95,
                        "frequency_penalty": 0,
                        "presence_penalty": 0,
                    },
                }
            },
        }

        super().__init__(default_config, replacement_config, flat_config_patch)

    def stages(self):
        #
        # Perform some setup here so that any initialization errors encountered
        # are caught before running the cases.
        #

        # Compile the jinja2 template used in the `prepare` stage.
        template = build_template(
            self.config(),
            "prepare.template",
            "prepare.template_text",
        )

        # Instantiate the model for the `infer` stage.
        model = self._registry.model(glom(self.config(), "infer.model.name"))

        # Create the system and user messages
        async def prepare(context):
            messages = [
                {"role": "system", "content": await template(context)},
                {"role": "user", "content": context["case"]["user"]},
            ]

            return messages

        # Invoke the model to generate a response
        async def infer(context):
            return await model.infer(context["stages"]["prepare"], context)

        # Attempt to extract a numerical answer from the model response.
        # Note that this method will raise an exception if the response is not
        # a number.
        async def extract(context):
            with ExceptionContext(f"Extracting numerical answer from LLM response."):
                return float(context["stages"]["infer"])

        # Compare the model response to the expected answer.
        async def assess(context):
            return context["stages"]["extract"] - context["case"]["answer"]

        # The pipeline stages will be executed in the order specified in the
        # dictionary returned by the stages() method. The keys of the
        # dictionary are the names of the stages.
        return {
            "prepare": prepare,
            "infer": infer,
            "extract": extract,
            "assess": assess,
        }


class DagPipeline(Pipeline):
    _name = "dag"
    _description = "The A..F graph of the seed."

    def __init__(self, registry, replacement_config, flat_config_patch):
        self._registry = registry
        super().__init__({}, replacement_config, flat_config_patch)

    def stages(self):
        async def a(context):
            return "A"

        async def b(context):
            return f"B({context['stages']['A']})"

        async def c(context):
            return f"C({context['stages']['A']})"

        async def d(context):
            return f"D({context['stages']['B']},{context['stages']['C']})"

        async def e(context):
            return "E"

        async def f(context):
            return f"F({context['stages']['D']},{context['stages']['E']})"

        return [
            {"name": "A", "function": a, "inputs": []},
            {"name": "B", "function": b, "inputs": ["A"]},
            {"name": "C", "function": c, "inputs": ["A"]},
            {"name": "D", "function": d, "inputs": ["B", "C"]},
            {"name": "E", "function": e, "inputs": []},
            {"name": "F", "function": f, "inputs": ["D", "E"]},
        ]
