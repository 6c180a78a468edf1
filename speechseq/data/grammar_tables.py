"""Word lists of the bilingual grammar, as whitespace-separated tables (parsed by ``grammar_lexicon``).

One lemma a line so that a Spanish speaker can proof-read the translations at a glance. Underscores
stand for spaces inside one entry ("new_york" -> "new york"). Tags are explained in ``grammar_lexicon``.
Changing any entry changes the generated sentences: bump ``grammar.GRAMMAR_VERSION``.
"""

from __future__ import annotations

from speechseq.data.grammar_morph import SpanishVerb

# en[/en_pl]  es[/es_pl]  gender  tags  [@locative preposition: places only]
NOUNS = """
man/men hombre m person
woman/women mujer f person
boy niño m person
girl niña f person
brother hermano m person
sister hermana f person
father padre m person
mother madre f person
son hijo m person
daughter hija f person
uncle tío m person
aunt tía f person
grandfather abuelo m person
grandmother abuela f person
king rey m person
queen reina f person
waiter camarero m person
waitress camarera f person
actor actor m person
actress actriz f person
doctor médico m person
teacher profesor m person
friend amigo m person
neighbor vecino m person
student estudiante m person
baker panadero m person
farmer granjero m person
writer escritor m person
singer cantante m person
driver conductor m person
cook cocinero m person
dog perro m animal,wash
cat gato m animal
horse caballo m animal
cow vaca f animal
bird pájaro m animal
fish/fish pez m animal
mouse/mice ratón m animal
rabbit conejo m animal
duck pato m animal
sheep/sheep oveja f animal
pig cerdo m animal
lion león m animal
elephant elefante m animal
monkey mono m animal
bear oso m animal
frog rana f animal
snake serpiente f animal
tiger tigre m animal
wolf/wolves lobo m animal
goat cabra f animal
donkey burro m animal
spider araña f animal
hen gallina f animal
turtle tortuga f animal
owl búho m animal
apple manzana f food,sweet
orange naranja f food,sweet
banana plátano m food,sweet
egg huevo m food,cook
cake pastel m food,make,sweet
sandwich sándwich/sándwiches m food,make
tomato/tomatoes tomate m food
potato/potatoes patata f food,cook
carrot zanahoria f food,cook
lemon limón m food
cookie galleta f food,make,sweet
pear pera f food,sweet
strawberry fresa f food,sweet
onion cebolla f food,cook
pizza pizza f food,make,cook
sausage salchicha f food,cook
bread pan m food,mass,make
cheese queso m food,mass
rice arroz m food,mass,cook
meat carne f food,mass,cook
soup sopa f food,mass,make,cook
chocolate chocolate m food,mass,sweet
salad ensalada f food,mass,make
butter mantequilla f food,mass
honey miel f food,mass,sweet
pasta pasta f food,mass,cook
milk leche f drink,mass
coffee café m drink,mass,make
tea té m drink,mass,make
juice zumo m drink,mass,sweet
wine vino m drink,mass
beer cerveza f drink,mass
lemonade limonada f drink,mass,make,sweet
book libro m read,write,thing,open,col
letter carta f read,write,thing
newspaper periódico m read,thing
magazine revista f read,thing
story/stories historia f read,write,long
message mensaje m read,write,long
poem poema m read,write,long
map mapa m read,thing,col,draw
postcard postal f read,write,thing
note nota f read,write,thing
key llave f thing
box caja f thing,container,open,col,paint
bag bolsa f thing,container,open,col
chair silla f thing,col,paint,break,fix
table mesa f thing,col,paint,fix
pen bolígrafo m thing,col
pencil lápiz m thing,col
phone teléfono m thing,break,fix,col
watch reloj m thing,break,fix
umbrella paraguas/paraguas m thing,open,col
ball pelota f thing,col
hat sombrero m thing,wear,col
shirt camisa f thing,wear,wash,col
shoe zapato m thing,wear,col
dress vestido m thing,wear,wash,col
coat abrigo m thing,wear,col
glass vaso m thing,container,break,wash
cup taza f thing,container,break,wash,col
plate plato m thing,break,wash
bottle botella f thing,container,open,break
window ventana f open,break,clean,fix
door puerta f open,paint,fix,col
picture cuadro m thing,paint,draw
computer ordenador m thing,break,fix
camera cámara f thing,break,fix
lamp lámpara f thing,break,fix,col
bed cama f col
ticket billete m thing
guitar guitarra f thing,col
flower flor f thing,col,draw
ring anillo m thing
sock calcetín m thing,wear,wash,col
toy juguete m thing,break,fix,col
tree árbol m col,draw,tall
wall pared f paint,col,clean
car coche m vehicle,wash,fix,col,paint,drive
bus autobús m vehicle,col,drive
train tren m vehicle,long
bicycle bicicleta f vehicle,wash,fix,col,paint
boat barco m vehicle,col,paint
plane avión m vehicle
truck camión m vehicle,wash,fix,col,drive
motorcycle moto f vehicle,wash,fix,col,drive
taxi taxi m vehicle,drive
house casa f place,building,paint,clean,col,sell @in
park parque m place,outdoor @in
school escuela f place,building @at
market mercado m place,building @at
station estación f place,building @at
beach playa f place,outdoor,water @on
kitchen cocina f place,room,clean,paint @in
garden jardín m place,outdoor,clean @in
library biblioteca f place,building @in
hospital hospital m place,building @in
museum museo m place,building,open @in
restaurant restaurante m place,building,open @in
office oficina f place,building,clean @in
church iglesia f place,building @in
bank banco m place,building,open @at
street calle f place,outdoor,cross,long @on
city ciudad f place,city @in
village pueblo m place,city @in
river río m place,outdoor,water,cross,long,wet @in
forest bosque m place,outdoor @in
mountain montaña f place,outdoor,tall @on
lake lago m place,outdoor,water,wet @in
airport aeropuerto m place,building @at
shop tienda f place,building,open @in
hotel hotel m place,building @in
bakery panadería f place,building,open @in
bathroom baño m place,room,clean @in
bedroom dormitorio m place,room,clean,paint @in
room habitación f place,room,clean,paint @in
theater teatro m place,building @in
cinema cine m place,building @at
farm granja f place,outdoor,sell @on
square plaza f place,outdoor,cross @in
bridge puente m place,outdoor,cross,long @on
supermarket supermercado m place,building @at
castle castillo m place,building,tall @in
building edificio m place,building,paint,tall @in
pool piscina f place,outdoor,water,clean,wet @in
zoo zoo m place,outdoor @at
english inglés m language
spanish español m language
french francés m language
german alemán m language
italian italiano m language
chinese chino m language
japanese japonés m language
portuguese portugués m language
russian ruso m language
arabic árabe m language
song canción f song,music,write
music música f music,mass
"""

# en  es[/es_m_pl]  copula  noun tags it applies to
ADJECTIVES = """
red rojo ser col
blue azul ser col
green verde ser col,tall
yellow amarillo ser col
white blanco ser col,animal
black negro ser col,animal
brown marrón ser col,animal
gray gris ser col,animal
purple morado ser col
big grande ser thing,vehicle,place,animal,container
small pequeño ser thing,vehicle,place,animal,container
tall alto ser person,tall
short bajo ser person
long largo ser long
old viejo ser thing,vehicle,building,read
new nuevo ser thing,vehicle,building,read
young joven/jóvenes ser person,animal
beautiful bonito ser thing,place,animal,col
ugly feo ser thing,building,animal
cheap barato ser thing,vehicle,food,drink
expensive caro ser thing,vehicle,food,drink,building
modern moderno ser building,vehicle,city
heavy pesado ser thing,container
fast rápido ser vehicle,animal
slow lento ser vehicle,animal
dangerous peligroso ser animal,outdoor
famous famoso ser person,city,building
interesting interesante ser read,person,city,building
boring aburrido ser read,person,city
funny divertido ser person,read,animal
strong fuerte ser person,animal
kind amable ser person
intelligent inteligente ser person,animal
lazy perezoso ser person,animal
rich rico ser person
poor pobre ser person
friendly simpático ser person,animal
sweet dulce ser sweet
delicious delicioso estar food
fresh fresco estar food,drink
hot caliente estar cook,drink
cold frío estar food,drink,wet
clean limpio estar thing,vehicle,place,wash,clean
dirty sucio estar thing,vehicle,place,wash,clean,animal
empty vacío estar container,building,room
full lleno estar container,building,room
open abierto estar open
closed cerrado estar open
tired cansado estar person,animal
sick enfermo estar person,animal
happy contento estar person,animal
sad triste estar person
angry enfadado estar person
busy ocupado estar person
quiet tranquilo estar person,animal,place
"""

# Irregular verbs are written out in full; the rules in grammar_morph cover the rest.
IRREGULAR_VERBS = {
    "ser": SpanishVerb("ser", tables={
        "present": ("soy", "eres", "es", "somos", "son"),
        "past": ("fui", "fuiste", "fue", "fuimos", "fueron"),
        "imperfect": ("era", "eras", "era", "éramos", "eran")}),
    "estar": SpanishVerb("estar", tables={
        "present": ("estoy", "estás", "está", "estamos", "están"),
        "past": ("estuve", "estuviste", "estuvo", "estuvimos", "estuvieron"),
        "imperfect": ("estaba", "estabas", "estaba", "estábamos", "estaban")}),
    "ir": SpanishVerb("ir", tables={
        "present": ("voy", "vas", "va", "vamos", "van"),
        "past": ("fui", "fuiste", "fue", "fuimos", "fueron")}),
    "tener": SpanishVerb("tener", future_stem="tendr", tables={
        "present": ("tengo", "tienes", "tiene", "tenemos", "tienen"),
        "past": ("tuve", "tuviste", "tuvo", "tuvimos", "tuvieron")}),
    "venir": SpanishVerb("venir", future_stem="vendr", tables={
        "present": ("vengo", "vienes", "viene", "venimos", "vienen"),
        "past": ("vine", "viniste", "vino", "vinimos", "vinieron")}),
    "hacer": SpanishVerb("hacer", future_stem="har", tables={
        "present": ("hago", "haces", "hace", "hacemos", "hacen"),
        "past": ("hice", "hiciste", "hizo", "hicimos", "hicieron")}),
    "ver": SpanishVerb("ver", tables={
        "present": ("veo", "ves", "ve", "vemos", "ven"),
        "past": ("vi", "viste", "vio", "vimos", "vieron")}),
    "querer": SpanishVerb("querer", stem_change="ie", future_stem="querr", tables={
        "past": ("quise", "quisiste", "quiso", "quisimos", "quisieron")}),
    "traer": SpanishVerb("traer", yo="traigo", tables={
        "past": ("traje", "trajiste", "trajo", "trajimos", "trajeron")}),
    "conducir": SpanishVerb("conducir", yo="conduzco", tables={
        "past": ("conduje", "condujiste", "condujo", "condujimos", "condujeron")}),
    "oír": SpanishVerb("oír", future_stem="oir", tables={
        "present": ("oigo", "oyes", "oye", "oímos", "oyen"),
        "past": ("oí", "oíste", "oyó", "oímos", "oyeron")}),
    "salir": SpanishVerb("salir", yo="salgo", future_stem="saldr"),
    "conocer": SpanishVerb("conocer", yo="conozco"),
}

# en[/past][+particle]  es[:stem change]  frames  object tags (- none)  [place tags]  [flags]
# frames: tr transitive, in intransitive (optional place), to motion to a goal, from leave, into enter.
# flags: pa = personal "a" before a person object; con = Spanish object takes "con" (talk to);
# st = stative: the English past is the Spanish imperfect (tenía, quería; "conocí" would mean "I met").
VERBS = """
eat/ate comer tr,in food
drink/drank beber tr,in drink
see/saw ver tr person,animal,thing,vehicle,place,food pa
have/had tener tr thing,animal,vehicle,food st
buy/bought comprar tr thing,food,drink,vehicle,sell
sell/sold vender tr thing,vehicle,sell
want querer tr thing,food,drink,vehicle,animal st
need necesitar tr thing,food,drink,vehicle st
read/read leer tr,in read
write/wrote escribir tr,in write
open abrir tr open
close cerrar:ie tr open
wash lavar tr wash
clean limpiar tr clean,wash,vehicle
paint pintar tr,in paint
find/found encontrar:ue tr thing,animal,person,vehicle pa
lose/lost perder:ie tr thing,animal
look+for buscar tr thing,animal,person,place pa
bring/brought traer tr thing,food,drink
carry llevar tr thing
wear/wore llevar tr wear
cook cocinar tr,in cook
make/made hacer tr make
prepare preparar tr cook,make
visit visitar tr person,building,city pa
call llamar tr person pa
help ayudar tr person pa
know/knew conocer tr person,city pa st
wait+for esperar tr person,vehicle pa
listen+to escuchar tr person,music pa
watch mirar tr person,animal,vehicle pa
hear/heard oír tr person,animal,music pa
remember recordar:ue tr person,song pa st
understand/understood entender:ie tr person,language pa st
talk+to hablar tr person con
draw/drew dibujar tr,in person,animal,draw,vehicle,building pa
use usar tr thing,vehicle
drive/drove conducir tr,in drive city,outdoor
order pedir:i tr food,drink
break/broke romper tr break
fix arreglar tr fix
sing/sang cantar tr,in song
learn/learned aprender tr language,song
speak/spoke hablar tr language
study estudiar tr,in language building,room
teach/taught enseñar tr language
forget/forgot olvidar tr thing
cross cruzar tr cross
live vivir in - city,building
work trabajar in - building,city,outdoor
sleep/slept dormir:ue in - building,room
run/ran correr in - outdoor
walk caminar in - outdoor,city
swim/swam nadar in - water
dance bailar in - building,outdoor,room
play jugar:uue in - outdoor,room,building
rest descansar in - building,room,outdoor
cry llorar in - building,room
go/went ir to -
come/came venir to -
return volver:ue to -
travel viajar to - city
arrive llegar to -
leave/left salir from -
enter entrar into - building,room
"""

# Hour expressions are generated (at one o'clock ... at half past twelve); the rest are listed.
# key | en | es | tenses (* any, or present/past/future)
TIMES = """
monday|on monday|el lunes|*
tuesday|on tuesday|el martes|*
wednesday|on wednesday|el miércoles|*
thursday|on thursday|el jueves|*
friday|on friday|el viernes|*
saturday|on saturday|el sábado|*
sunday|on sunday|el domingo|*
mondays|on mondays|los lunes|present
saturdays|on saturdays|los sábados|present
sundays|on sundays|los domingos|present
weekend|on the weekend|el fin de semana|*
today|today|hoy|*
yesterday|yesterday|ayer|past
tomorrow|tomorrow|mañana|future
morning|in the morning|por la mañana|*
afternoon|in the afternoon|por la tarde|*
night|at night|por la noche|*
last_night|last night|anoche|past
this_morning|this morning|esta mañana|past,future
every_day|every day|todos los días|present
every_week|every week|todas las semanas|present
every_morning|every morning|todas las mañanas|present
last_week|last week|la semana pasada|past
last_year|last year|el año pasado|past
next_week|next week|la próxima semana|future
next_year|next year|el próximo año|future
noon|at noon|a mediodía|*
midnight|at midnight|a medianoche|*
summer|in summer|en verano|*
winter|in winter|en invierno|*
spring|in spring|en primavera|*
autumn|in autumn|en otoño|*
"""
MONTHS = [("january", "enero"), ("february", "febrero"), ("march", "marzo"), ("april", "abril"),
           ("may", "mayo"), ("june", "junio"), ("july", "julio"), ("august", "agosto"),
           ("september", "septiembre"), ("october", "octubre"), ("november", "noviembre"),
           ("december", "diciembre")]
HOURS_EN = "one two three four five six seven eight nine ten eleven twelve".split()
HOURS_ES = "una dos tres cuatro cinco seis siete ocho nueve diez once doce".split()

# en es gender (Spanish spelling carries the accent: maría, lucía)
NAMES = """
maria maría f
lucia lucía f
sofia sofía f
elena elena f
laura laura f
marta marta f
ana ana f
isabel isabel f
carmen carmen f
paula paula f
carlos carlos m
pablo pablo m
diego diego m
miguel miguel m
david david m
jorge jorge m
pedro pedro m
juan juan m
luis luis m
javier javier m
"""

# en es: cities and countries, used without an article.
PROPER_PLACES = """
london londres
paris parís
madrid madrid
rome roma
mexico méxico
spain españa
france francia
italy italia
england inglaterra
germany alemania
peru perú
japan japón
china china
brazil brasil
berlin berlín
lisbon lisboa
seville sevilla
barcelona barcelona
new_york nueva_york
"""

COPULAS: dict[str, SpanishVerb] = {"ser": IRREGULAR_VERBS["ser"], "estar": IRREGULAR_VERBS["estar"]}

PRONOUNS: dict[str, tuple[str, str, str]] = {
    # key: (person, Spanish subject pronoun, gender used for agreement)
    "i": ("1sg", "yo", "m"),
    "you": ("2sg", "tú", "m"),
    "he": ("3sg", "él", "m"),
    "she": ("3sg", "ella", "f"),
    "we": ("1pl", "nosotros", "m"),
    "they": ("3pl", "ellos", "m"),
}
